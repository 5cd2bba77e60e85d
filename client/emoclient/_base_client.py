"""What `Client` and `AsyncClient` share: everything but the I/O.

`BaseClient` holds the options and their checks, the connection and TLS options of tritonclient's
clients, the requests a call is made of, the model-info cache, the assembly of results and the
translation of tritonclient's errors into the SDK's. The two subclasses add only the request
loop: how a request is sent, retried and waited for. The pure pieces below it (payloads,
decisions, error translation) are module functions, so they are tested without a server.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl as ssl_module
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypedDict

import numpy as np
import numpy.typing as npt
from tritonclient.utils import InferenceServerException

from . import protocol as wire
from ._trace_context import trace_headers
from .errors import (
    ConfigurationError,
    EmotritonError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RetryableError,
    ServerError,
    ServerUnavailableError,
    WrongProtocolError,
)
from .results import Classification, Health, ModelInfo

Protocol = Literal["grpc", "http"]
# Who waits for a call: a person (served first), or a job of many texts (served behind them,
# pacing itself to what the server accepts). A call of more than one request is bulk unless
# told otherwise.
Priority = Literal["interactive", "bulk"]
_PRIORITY_LEVELS = {"interactive": wire.PRIORITY_INTERACTIVE, "bulk": wire.PRIORITY_BULK}
Texts = str | Sequence[str]
Threshold = float | Mapping[str, float] | None
# A tritonclient call, not yet made: `Client` calls it, `AsyncClient` awaits what it returns.
Request = Callable[[], Any]

DEFAULT_URLS: Mapping[str, str] = MappingProxyType(
    {"grpc": "localhost:8001", "http": "localhost:8000"}
)
DEFAULT_MAX_TEXT_BYTES = wire.MAX_TEXT_BYTES


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of transient failures (server unreachable or not ready), with exponential
    backoff. Errors that cannot succeed on a retry (bad input, unknown model, timeouts) are
    raised at once."""

    attempts: int = 3
    backoff: float = 0.2  # seconds before the first retry; doubles each time
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy.attempts must be at least 1, not {self.attempts}"
            )
        if self.backoff < 0 or self.max_backoff < 0:
            raise ConfigurationError("RetryPolicy backoffs must not be negative")

    def delays(self) -> list[float]:
        """Seconds to wait after each failed attempt but the last."""
        return [min(self.backoff * 2**i, self.max_backoff) for i in range(self.attempts - 1)]


# gRPC's message-size caps as tritonclient sets them by default (2 GiB - 1).
_MAX_GRPC_MESSAGE = 2**31 - 1


def grpc_channel_args(retry: RetryPolicy) -> list[tuple[str, int]]:
    """Channel options: tritonclient's message-size limits, and a reconnect backoff that
    follows the retry policy. gRPC's own (1 s, growing to 120 s) would keep failing a channel
    fast for minutes after one refused connection, whatever our retries do."""
    return [
        ("grpc.max_send_message_length", _MAX_GRPC_MESSAGE),
        ("grpc.max_receive_message_length", _MAX_GRPC_MESSAGE),
        ("grpc.initial_reconnect_backoff_ms", int(retry.backoff * 1000)),
        ("grpc.min_reconnect_backoff_ms", int(retry.backoff * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(retry.max_backoff * 1000)),
    ]


@dataclass(frozen=True)
class Tls:
    """TLS settings, checked when the client is built: tritonclient opens the PEM files in its
    own constructor, and a missing one would surface as a bare FileNotFoundError (and an
    AttributeError from the half-built client's `__del__`)."""

    enabled: bool
    root_certificates: str | None = None
    private_key: str | None = None
    certificate_chain: str | None = None

    def __post_init__(self) -> None:
        files = {
            "root_certificates": self.root_certificates,
            "private_key": self.private_key,
            "certificate_chain": self.certificate_chain,
        }
        given = {option: path for option, path in files.items() if path is not None}
        if given and not self.enabled:
            raise ConfigurationError(f"{', '.join(given)} need ssl=True")
        for option, path in given.items():
            try:
                with open(path, "rb"):
                    pass
            except OSError as error:
                raise ConfigurationError(
                    f"{option}: cannot read {path!r} ({error.strerror})"
                ) from None

    def ssl_context(self) -> ssl_module.SSLContext:
        """The context aiohttp (tritonclient.http.aio) verifies the server with."""
        try:
            context = ssl_module.create_default_context(cafile=self.root_certificates)
            if self.certificate_chain:
                context.load_cert_chain(self.certificate_chain, self.private_key)
        except ssl_module.SSLError as error:
            raise ConfigurationError(f"TLS files not usable: {error}") from None
        return context

    def gevent_options(self) -> dict[str, str]:
        """geventhttpclient's ssl_options (tritonclient.http)."""
        files = {
            "ca_certs": self.root_certificates,
            "keyfile": self.private_key,
            "certfile": self.certificate_chain,
        }
        return {option: path for option, path in files.items() if path}


def connection_options(
    protocol: Protocol, asynchronous: bool, timeout: float | None, retry: RetryPolicy, tls: Tls
) -> dict[str, Any]:
    """Keyword arguments of tritonclient's InferenceServerClient: TLS, timeouts, channel."""
    if protocol == "grpc":  # tritonclient.grpc and tritonclient.grpc.aio take the same
        return {
            "ssl": tls.enabled,
            "root_certificates": tls.root_certificates,
            "private_key": tls.private_key,
            "certificate_chain": tls.certificate_chain,
            "channel_args": grpc_channel_args(retry),
        }
    if asynchronous:
        context = tls.ssl_context() if tls.enabled else None
        return {"ssl": tls.enabled, "ssl_context": context, "conn_timeout": timeout}
    return {
        "ssl": tls.enabled,
        **({"ssl_options": tls.gevent_options()} if tls.enabled else {}),
        "connection_timeout": timeout,
        "network_timeout": timeout,
    }


def connection_errors(protocol: Protocol, asynchronous: bool) -> tuple[type[Exception], ...]:
    """What tritonclient's transports raise when a connection is refused or closes before the
    answer (a server restart): the server is unavailable for now, and the call is retried.
    gRPC says so with an UNAVAILABLE status; the HTTP clients raise their transport's errors,
    imported here because tritonclient has loaded them already."""
    if protocol == "grpc":
        return (OSError,)
    if asynchronous:
        from aiohttp import ClientConnectionError  # ServerDisconnectedError is no OSError

        return (OSError, ClientConnectionError)
    from geventhttpclient.response import HTTPParseError  # HTTPConnectionClosed and kin

    return (OSError, HTTPParseError)


def texts_of(texts: Texts) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)


def encode_texts(
    texts: Sequence[str], max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
) -> npt.NDArray[np.object_]:
    """A BYTES tensor [n, 1] of UTF-8 texts; a bad item is named by its index."""
    encoded = np.empty((len(texts), 1), dtype=object)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"expected str, got {type(text).__name__}", index)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(f"not encodable as UTF-8 ({error.reason})", index) from None
        if len(data) > max_text_bytes:
            raise InvalidInputError(
                f"{len(data)} bytes, over the {max_text_bytes}-byte limit (the model reads only "
                "its first max_length tokens anyway)",
                index,
            )
        encoded[index, 0] = data
    return encoded


def checked_threshold(threshold: Threshold) -> Threshold:
    """`threshold` as numbers from 0 to 1 (a str is not one, nor a list of labels), checked
    before anything is sent; InvalidInputError otherwise."""
    if threshold is None:
        return None
    if not isinstance(threshold, Mapping):
        return probability("threshold", threshold)
    return {label: probability(f"threshold[{label!r}]", t) for label, t in threshold.items()}


def probability(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(
            f"{what} must be a number from 0 to 1, or a mapping of label to number, not {value!r}"
        )
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(
            f"{what} must be from 0 to 1 (scores are probabilities), not {value}"
        )
    return float(value)


def chunks(total: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


@dataclass(frozen=True)
class Decision:
    """How one call turns scores into labels: the served rule, or the caller's override."""

    thresholds: npt.NDArray[np.float64] | None  # None: keep the served decision
    top_k: int | None

    @classmethod
    def for_call(cls, info: ModelInfo, threshold: Threshold, top_k: int | None) -> Decision:
        """`threshold` as checked_threshold returns it."""
        if top_k is not None and top_k < 1:
            raise InvalidInputError(f"top_k must be at least 1, not {top_k}")
        if threshold is None:
            return cls(None, top_k)
        if not isinstance(threshold, Mapping):
            return cls(np.full(len(info.labels), float(threshold)), top_k)
        unknown = sorted(set(threshold) - set(info.labels))
        if unknown:
            raise InvalidInputError(
                f"unknown labels {unknown}; {info.name} has {list(info.labels)}"
            )
        served = info.thresholds or {}
        missing = [label for label in info.labels if label not in threshold and label not in served]
        if missing:
            raise InvalidInputError(
                f"{info.name} decides by argmax; give a threshold for every label, or one number"
            )
        merged = {**served, **threshold}
        return cls(np.array([merged[label] for label in info.labels], dtype=float), top_k)

    def results(
        self,
        info: ModelInfo,
        scores: npt.NDArray[np.float32],
        predicted: npt.NDArray[np.bool_] | None,
        offset: int,
    ) -> list[Classification]:
        if self.thresholds is not None:
            predicted = scores >= self.thresholds
        elif predicted is None:
            predicted = served_decision(info, scores)
        results = []
        for row, (row_scores, row_predicted) in enumerate(zip(scores.tolist(), predicted.tolist())):
            by_label = dict(zip(info.labels, row_scores))
            chosen = [label for label, flag in zip(info.labels, row_predicted) if flag]
            chosen.sort(key=by_label.__getitem__, reverse=True)
            results.append(
                Classification(
                    index=offset + row, scores=by_label, labels=tuple(chosen[: self.top_k])
                )
            )
        return results


@dataclass(frozen=True)
class Call:
    """One `classify` call: the model, its decision rule, and the inference requests (one per
    part of at most the batch size) whose answers become the results, in order."""

    info: ModelInfo
    decision: Decision
    parts: list[slice]
    requests: list[Request]
    progress: Progress | None  # a bulk call's: its shed requests are sent again

    def results(self, responses: Sequence[Any]) -> list[Classification]:
        """The results of the call, from the responses to `requests`, in the same order."""
        return [
            result
            for part, response in zip(self.parts, responses)
            for result in self.decision.results(self.info, *outputs_of(response), part.start)
        ]


# Triton's HTTP front end answers an error with a status chosen by its code (http_server.cc,
# HttpCodeFromError): UNAVAILABLE 503, NOT_FOUND 404, INTERNAL 500, INVALID_ARG and the rest
# 400. gRPC reports the code itself ("StatusCode.UNAVAILABLE").
# Triton parses request JSON with TritonJson, whose parse errors are INTERNAL, so a malformed
# request comes back as 500 with this message: the request's fault, not the server's.
_MALFORMED_JSON = "failed to parse the request json buffer"
# A model in the repository with no version loaded (NOT_FOUND "Request for unknown model: 'x'
# has no available versions"): it is loading, or unloading while the server shuts down, so the
# call is retried; a model the server does not have "is not found".
_NOT_LOADED = "has no available versions"
# Triton's answer to a call of a restricted API without the key: HTTP 403, and over gRPC an
# UNAVAILABLE whose message says so ("This protocol is restricted, expecting header ...").
_RESTRICTED = "is restricted, expecting header"
# Triton times a request's wait in a queue, not its compute: a request let wait its caller's
# whole deadline would be computed after the caller left. It may wait half; the other half is
# for the batch it joins and the round trip (a 64-text batch is about 0.35 s on 2 CPU cores).
# Measured at twice the capacity with a 1 s timeout: 1,380 texts computed for callers that had
# gone when the whole timeout was sent, 0 with half (docs/reliability.md).
QUEUE_SHARE_OF_TIMEOUT = 0.5

# A model's queue policy shedding a request (Triton's RequestQueue: both UNAVAILABLE).
_SHED = ("exceeds maximum queue size", "request timeout expired")
# What each transport says when it meets the other protocol: an HTTP client at a gRPC port
# (geventhttpclient and aiohttp read HTTP/2's preface as a bad status line), a gRPC client at
# an HTTP port.
_GRPC_ANSWERED = "Expected HTTP/"
_HTTP_ANSWERED = "Trying to connect an http1.x server"
# HTTP statuses that say the server cannot be reached now: Triton's (or the launcher's guard's)
# 503, and 502 from a proxy in front (compose's and the pods' nginx) while Triton restarts.
_UNREACHABLE = ("502", "503")


def translate(
    status: str, message: str, url: str, timeout: float | None, model: str | None = None
) -> EmotritonError:
    """The SDK's error for a tritonclient status and message of a request about `model`. An
    unknown model is a ModelNotFoundError without the served models' names, which the client
    adds (that takes a request of its own)."""
    lowered = message.lower()
    if _HTTP_ANSWERED in message:
        return WrongProtocolError(
            url, "answers HTTP/1.1, not gRPC: use protocol='http', or its gRPC port (8001)"
        )
    if any(reason in lowered for reason in _SHED):
        return OverloadedError(url, message)
    if status == "403" or _RESTRICTED in lowered:
        return PermissionDeniedError(
            f"{url} restricts this API to its operator: {message} (pass admin_key=)"
        )
    unreachable = (
        status in _UNREACHABLE or "UNAVAILABLE" in status or "failed to connect" in lowered
    )
    if unreachable or _NOT_LOADED in lowered:
        return ServerUnavailableError(url, message)
    if "DEADLINE_EXCEEDED" in status or "timed out" in lowered or "deadline" in lowered:
        return InferenceTimeoutError(f"no answer from {url} within {timeout}s")
    if "unknown model" in lowered or "NOT_FOUND" in status or status == "404":
        return ServerError(message, status) if model is None else ModelNotFoundError(model, None)
    if "INVALID_ARGUMENT" in status or status == "400" or lowered.startswith(_MALFORMED_JSON):
        return InvalidInputError(message)
    return ServerError(message, status or None)


def sdk_error(
    error: Exception,
    url: str,
    timeout: float | None,
    connection: tuple[type[Exception], ...] = (OSError,),
    model: str | None = None,
) -> EmotritonError:
    """The SDK's error for an exception from tritonclient or its transport (`connection`: the
    transport's errors for a refused or lost connection) on a request about `model`. Any other
    exception is not the server's answer: it is raised as it is."""
    if isinstance(error, InferenceServerException):
        status, message = str(error.status() or ""), error.message() or str(error)
        return translate(status, message, url, timeout, model)
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        return InferenceTimeoutError(f"no answer from {url} within {timeout}s")
    if _GRPC_ANSWERED in str(error):
        return WrongProtocolError(
            url, "does not answer HTTP/1.1 (a gRPC port?): use protocol='grpc', or its HTTP port"
            " (8000)",
        )  # fmt: skip
    if isinstance(error, connection):
        return ServerUnavailableError(url, str(error) or type(error).__name__)
    raise error


def _index_entries(index: Any, protocol: Protocol) -> list[Mapping[str, Any]]:
    """The entries of a repository index, in either protocol's shape."""
    entries: list[Mapping[str, Any]] = index.get("models", []) if protocol == "grpc" else index
    return entries


def health_of(live: bool, ready: bool, index: Any, protocol: Protocol) -> Health:
    """Health from the health endpoints' answers and the repository index (None: the server
    lists its models to its operator only, so no model is reported)."""
    if index is None:
        return Health(live=bool(live), ready=bool(ready), models={})
    models = {
        entry["name"]: entry.get("state") == "READY" for entry in _index_entries(index, protocol)
    }
    return Health(live=bool(live), ready=bool(ready), models=models)


def ready_names(index: Any, protocol: Protocol) -> list[str]:
    """READY model names from a repository index."""
    entries = _index_entries(index, protocol)
    return [entry["name"] for entry in entries if entry.get("state") == "READY"]


def config_of(response: Any, protocol: Protocol) -> Mapping[str, Any]:
    config: Mapping[str, Any] = response["config"] if protocol == "grpc" else response
    return config


def outputs_of(response: Any) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_] | None]:
    """SCORES, and PREDICTED where the response holds it: one from Triton's response cache holds
    what the request that filled the entry asked for (Triton's key is the inputs alone)."""
    return response.as_numpy(wire.SCORES_OUTPUT), response.as_numpy(wire.PREDICTED_OUTPUT)


def served_decision(info: ModelInfo, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """The served decision on `scores`, as the postprocess model makes it (float32 scores at
    least their float32 thresholds, or the argmax)."""
    if info.decision == "argmax" or info.thresholds is None:
        predicted = np.zeros(scores.shape, dtype=bool)
        predicted[np.arange(len(scores)), scores.argmax(axis=-1)] = True
        return predicted
    thresholds = np.asarray([info.thresholds[label] for label in info.labels], dtype=np.float32)
    return scores >= thresholds


@dataclass
class Progress:
    """A bulk call's account. The server sheds what it cannot take at once; a request of a
    bulk call that it shed is sent again, after a backoff, for as long as the call makes
    progress: until no request of it was answered for `patience` seconds (the client's
    timeout; None: for as long as it takes)."""

    patience: float | None
    last: float = field(default_factory=time.monotonic)

    def answered(self) -> None:
        self.last = time.monotonic()

    def stalled(self) -> bool:
        return self.patience is not None and time.monotonic() - self.last > self.patience


@dataclass
class Attempts:
    """When to send a request again after a failure that a later attempt may not meet: as the
    retry policy says, and, for a request of a bulk call that the server shed, for as long as
    the call progresses."""

    retry: RetryPolicy
    progress: Progress | None
    failures: int = 0
    sheds: int = 0

    def delay(self, failure: RetryableError) -> float | None:
        """Seconds to wait before the next attempt; None: give up, raise `failure`."""
        progress = self.progress
        if isinstance(failure, OverloadedError) and progress and not progress.stalled():
            self.sheds += 1
            return min(self.retry.backoff * 2.0 ** min(self.sheds - 1, 16), self.retry.max_backoff)
        self.failures += 1
        delays = self.retry.delays()
        return delays[self.failures - 1] if self.failures <= len(delays) else None


def require_at_least_one(option: str, value: float | None) -> None:
    if value is not None and value < 1:
        raise ConfigurationError(f"{option} must be at least 1, not {value}")


class ClientOptions(TypedDict, total=False):
    """`BaseClient`'s keyword options, for subclasses that pass them on."""

    protocol: Protocol
    timeout: float | None
    headers: Mapping[str, str] | None
    ssl: bool
    root_certificates: str | None
    private_key: str | None
    certificate_chain: str | None
    batch_size: int | None
    retry: RetryPolicy | None
    max_text_bytes: int
    admin_key: str | None


class BaseClient:
    """Options, connection, requests, model cache, results and errors of `Client` and
    `AsyncClient`; see `Client` for the arguments."""

    _asynchronous: ClassVar[bool]

    def __init__(
        self,
        url: str | None = None,
        *,
        protocol: Protocol = "grpc",
        timeout: float | None = 60.0,
        headers: Mapping[str, str] | None = None,
        ssl: bool = False,
        root_certificates: str | None = None,
        private_key: str | None = None,
        certificate_chain: str | None = None,
        batch_size: int | None = None,
        retry: RetryPolicy | None = None,
        max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
        admin_key: str | None = None,
    ) -> None:
        if protocol not in DEFAULT_URLS:
            raise ConfigurationError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        if url is not None and "://" in url:
            raise ConfigurationError(f"url is HOST:PORT, without a scheme, not {url!r}")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be positive or None, not {timeout}")
        require_at_least_one("batch_size", batch_size)
        require_at_least_one("max_text_bytes", max_text_bytes)
        tls = Tls(ssl, root_certificates, private_key, certificate_chain)
        self.url = url or DEFAULT_URLS[protocol]
        self.protocol = protocol
        self.timeout = timeout
        self.headers = dict(headers or {})
        if admin_key is not None:
            prefix = wire.GRPC_RESTRICTED_HEADER_PREFIX if protocol == "grpc" else ""
            self.headers[prefix + wire.ADMIN_HEADER] = admin_key
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self.max_text_bytes = max_text_bytes
        module = f"tritonclient.{protocol}" + (".aio" if self._asynchronous else "")
        self._triton = importlib.import_module(module)
        self._connection_errors = connection_errors(protocol, self._asynchronous)
        options = connection_options(protocol, self._asynchronous, timeout, self.retry, tls)
        self._client = self._triton.InferenceServerClient(self.url, **options)
        self._models: dict[str, ModelInfo] = {}

    def _payload(self, texts: Texts) -> npt.NDArray[np.object_]:
        """The texts as a request tensor; checked before anything is sent (with the call's
        threshold, by checked_threshold)."""
        return encode_texts(texts_of(texts), self.max_text_bytes)

    def _plan(
        self,
        info: ModelInfo,
        payload: npt.NDArray[np.object_],
        threshold: Threshold,
        top_k: int | None,
        priority: Priority | None = None,
    ) -> Call:
        """The call's requests. A call that fits in one request (at most the batch size) is
        interactive and a call of more is bulk, unless `priority` says otherwise; a bulk call is
        sent in requests of the model's bulk batch size (or `batch_size`)."""
        decision = Decision.for_call(info, threshold, top_k)
        size = min(self.batch_size or info.max_batch_size, info.max_batch_size)
        if priority is None:
            priority = "bulk" if len(payload) > size else "interactive"
        if priority not in _PRIORITY_LEVELS:
            raise InvalidInputError(f"priority is 'interactive' or 'bulk', not {priority!r}")
        if priority == "bulk":
            size = min(self.batch_size or info.bulk_batch_size, info.max_batch_size)
        parts = chunks(len(payload), size)
        level = _PRIORITY_LEVELS[priority]
        requests = [self._infer_request(info.name, payload[part], level) for part in parts]
        progress = Progress(self.timeout) if priority == "bulk" else None
        return Call(info, decision, parts, requests, progress)

    def _infer_request(
        self, model: str, payload: npt.NDArray[np.object_], priority: int
    ) -> Request:
        text = self._triton.InferInput(wire.TEXT_INPUT, list(payload.shape), "BYTES")
        text.set_data_from_numpy(payload)
        outputs = [
            self._triton.InferRequestedOutput(wire.SCORES_OUTPUT),
            self._triton.InferRequestedOutput(wire.PREDICTED_OUTPUT),
        ]
        # Part of the timeout travels as the request's own (µs): a model's queue drops a request
        # that waited longer, instead of computing it for a caller about to give up.
        deadline = self._deadline()
        if self.timeout is not None:
            deadline["timeout"] = int(self.timeout * QUEUE_SHARE_OF_TIMEOUT * 1_000_000)
        return partial(
            self._client.infer,
            model,
            [text],
            outputs=outputs,
            headers={**self.headers, **trace_headers()},
            priority=priority,
            **deadline,
        )

    def _config_request(self, model: str) -> Request:
        return partial(self._client.get_model_config, model, **self._json_options())

    def _index_request(self) -> Request:
        return partial(self._client.get_model_repository_index, **self._json_options())

    def _health_requests(self) -> list[Request]:
        """Liveness, readiness and the repository index, as `_health` takes them."""
        return [
            partial(self._client.is_server_live, headers=self.headers, **self._deadline()),
            partial(self._client.is_server_ready, headers=self.headers, **self._deadline()),
            self._index_request(),
        ]

    def _json_options(self) -> dict[str, Any]:
        """Headers, and JSON (not protobuf) answers from gRPC, the shape HTTP answers in."""
        as_json = {"as_json": True} if self.protocol == "grpc" else {}
        return {"headers": self.headers, **as_json, **self._deadline()}

    def _deadline(self) -> dict[str, Any]:
        """Over gRPC every request carries the timeout as its deadline (the HTTP clients time
        out on their connection's timeouts)."""
        if self.protocol == "grpc" and self.timeout is not None:
            return {"client_timeout": self.timeout}
        return {}

    def _remember(self, name: str, config: Any) -> ModelInfo:
        """Parse and cache a model's config response."""
        self._models[name] = ModelInfo.from_config(config_of(config, self.protocol))
        return self._models[name]

    def _ready_names(self, index: Any) -> list[str]:
        return ready_names(index, self.protocol)

    def _health(self, answers: Sequence[Any] | None) -> Health:
        """Health from the answers to `_health_requests`; None: the server did not answer."""
        if answers is None:
            return Health(live=False, ready=False, models={})
        live, ready, index = answers
        return health_of(live, ready, index, self.protocol)

    def _sdk_error(self, error: Exception, model: str | None) -> EmotritonError:
        """The SDK's error for a failed request about `model`."""
        return sdk_error(error, self.url, self.timeout, self._connection_errors, model)
