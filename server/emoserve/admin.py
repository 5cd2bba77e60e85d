"""Triton's administrative APIs, locked behind a key that only the operator and the launcher hold.

Triton 2.51 serves model loading (which can upload a python model: code execution), shared-memory
registration (the server writes where a client says), logging, trace and statistics to anyone
who reaches its ports. Its restricted-API options make each of those categories answer 403
unless a request carries a header with the key.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from emoclient.errors import EmotritonError
from emoclient.protocol import ADMIN_HEADER

ADMIN_KEY_VARIABLE = "EMOTRITON_ADMIN_KEY"
# Categories only an operator needs. Inference, health, metadata and model-config stay open:
# clients classify, check readiness and read a model's labels; and statistics, which say what
# /metrics says (perf_analyzer reads them, and so needs no key on its command line).
ADMIN_APIS = ("model-repository", "shared-memory", "logging", "trace")
# A key must be hard to guess and must not break the flag it travels in
# (`--http-restricted-api=<apis>:<header>=<key>`): URL-safe characters, 24 at least.
MIN_KEY_LENGTH = 24
_KEY_CHARACTERS = re.compile(r"^[A-Za-z0-9_.~-]+$")
# Model states of the repository index in which the model still holds its backend processes.
HOLDING_STATES = frozenset({"READY", "LOADING", "UNLOADING"})


class AdminApiError(EmotritonError):
    """Triton refused or failed an administrative call of the launcher."""


def admin_key(given: str | None = None) -> str:
    """`given`, or the operator's key from EMOTRITON_ADMIN_KEY, checked; or a random one nobody
    else knows."""
    key = given or os.environ.get(ADMIN_KEY_VARIABLE)
    return secrets.token_urlsafe(32) if not key else checked_key(key)


def checked_key(key: str) -> str:
    """`key`, or AdminApiError when it is short or holds a character the flag would misread."""
    if len(key) < MIN_KEY_LENGTH:
        raise AdminApiError(
            f"{ADMIN_KEY_VARIABLE} has {len(key)} characters: use {MIN_KEY_LENGTH} or more "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if not _KEY_CHARACTERS.match(key):
        raise AdminApiError(
            f"{ADMIN_KEY_VARIABLE} may hold letters, digits and - _ . ~ only (a : , = or space "
            "would change the flag it travels in)"
        )
    return key


def restriction_flags(key: str) -> tuple[str, ...]:
    """Triton flags that put ADMIN_APIS behind `key` on HTTP and gRPC alike."""
    rule = f"{','.join(ADMIN_APIS)}:{ADMIN_HEADER}={key}"
    return (f"--http-restricted-api={rule}", f"--grpc-restricted-protocol={rule}")


class AdminApi:
    """The calls the launcher makes over Triton's HTTP port, with the key."""

    def __init__(self, http_url: str, key: str, timeout: float = 60.0) -> None:
        self.base = f"http://{http_url}"
        self.key = key
        self.timeout = timeout

    def _call(
        self, path: str, body: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={ADMIN_HEADER: self.key, "Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise AdminApiError(f"{path}: {error.code} {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            raise AdminApiError(f"{path}: {error}") from error
        return json.loads(payload) if payload else None

    def states(self, timeout: float | None = None) -> dict[str, str]:
        """Each model of the repository and its state (READY, UNLOADING, UNAVAILABLE, ...)."""
        index = self._call("/v2/repository/index", {}, timeout)
        return {entry["name"]: entry.get("state", "") for entry in index}

    def is_ensemble(self, model: str, timeout: float | None = None) -> bool:
        config = self._call(f"/v2/models/{model}/config", None, timeout)
        return bool(config.get("platform") == "ensemble")

    def unload(self, model: str, timeout: float | None = None) -> None:
        """Ask Triton to unload `model` (and the ensembles that use it); it answers at once and
        unloads once the model's requests in flight have finished."""
        self._call(f"/v2/repository/models/{model}/unload", {}, timeout)

    def load(self, model: str) -> None:
        """Load `model` anew (and reload the ensembles that use it); returns once it is ready."""
        self._call(f"/v2/repository/models/{model}/load", {})


DRAIN_POLL_SECS = 0.05


def drain(admin: AdminApi, deadline: float) -> None:
    """Stop taking requests and let those in flight finish, until `deadline` (monotonic).

    Unloading the ensembles makes the server unready and refuses new calls at once, while their
    requests in flight finish on composing models that still run. A SIGTERM alone would stop
    every model at once and fail the later steps of those requests. Every call waits at most
    the time left; a server that does not answer is not drained.
    """

    def left() -> float:
        return max(deadline - time.monotonic(), DRAIN_POLL_SECS)

    try:
        ready = [model for model, state in admin.states(left()).items() if state == "READY"]
        ensembles = [model for model in ready if admin.is_ensemble(model, left())]
        for model in ensembles:
            admin.unload(model, left())
        while time.monotonic() < deadline and any(
            admin.states(left()).get(model) in HOLDING_STATES for model in ensembles
        ):
            time.sleep(DRAIN_POLL_SECS)
    except AdminApiError:
        return
