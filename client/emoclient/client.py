"""`Client`: classify texts with an emotion model served by Triton, over gRPC or HTTP."""

from __future__ import annotations

import time
from typing import Any

from ._base_client import (
    Attempts,
    BaseClient,
    Priority,
    Progress,
    Request,
    Texts,
    Threshold,
    checked_threshold,
)
from .errors import (
    ModelNotFoundError,
    PermissionDeniedError,
    RetryableError,
    ServerUnavailableError,
    UnsupportedModelError,
)
from .results import Classification, Health, ModelInfo


class Client(BaseClient):
    """A synchronous client for emotion classifiers served by Triton.

    >>> with Client("localhost:8001") as client:
    ...     client.classify("Thank you so much!", model="go_emotions")[0].labels
    ('gratitude',)

    Label names, activation and thresholds come from the server (the ensemble's config), read
    once per model. A call of more texts than the model's max batch size (or `batch_size`) is
    sent as several requests, one after the other; results come back in the order of the texts.
    Such a call is bulk: the server serves it behind interactive requests, and a request of it
    that the server sheds is sent again, after a backoff, while the call makes progress.

    Args:
        url: HOST:PORT of Triton's gRPC (default localhost:8001) or HTTP (localhost:8000) port.
        protocol: "grpc" or "http" (KServe v2 REST).
        timeout: seconds to wait for each request; None waits forever.
        headers: sent with every request (authentication, tracing).
        ssl: use TLS; `root_certificates`, `private_key` and `certificate_chain` are PEM file
            paths (a custom CA, and a client certificate for mutual TLS).
        batch_size: most texts per request (at most the model's max batch size).
        retry: retries of transient failures; `RetryPolicy(attempts=1)` turns them off.
        max_text_bytes: longest text accepted, in UTF-8 bytes.
        admin_key: the server's admin key (EMOTRITON_ADMIN_KEY where it runs), for what its
            operator alone may call: `models()` and the model names in `health()` and in
            ModelNotFoundError come from the repository index, which emotriton serve locks.

    Invalid options raise `ConfigurationError` here, before anything connects.
    """

    _asynchronous = False

    def classify(
        self,
        texts: Texts,
        *,
        model: str,
        top_k: int | None = None,
        threshold: Threshold = None,
        priority: Priority | None = None,
    ) -> list[Classification]:
        """One result per text, in order; a single string counts as a list of one.

        `threshold` (one number, or label → number) replaces the served thresholds for this
        call: a label is predicted when its score is at least its threshold. `top_k` keeps at
        most the k best of the predicted labels. `priority` is "interactive" (served first) or
        "bulk"; by default a call of one request is interactive and a call of more is bulk.
        """
        payload = self._payload(texts)
        threshold = checked_threshold(threshold)
        if not len(payload):
            return []
        call = self._plan(self.model(model), payload, threshold, top_k, priority)
        return call.results(
            [self._send(request, model, call.progress) for request in call.requests]
        )

    def model(self, name: str) -> ModelInfo:
        """What the server publishes about model `name` (read once, then cached)."""
        if name in self._models:
            return self._models[name]
        return self._remember(name, self._send(self._config_request(name), name))

    def models(self) -> list[ModelInfo]:
        """The emotion classifiers the server has ready."""
        found = []
        for name in self._ready_names(self._send(self._index_request())):
            try:
                found.append(self.model(name))
            except UnsupportedModelError:
                continue
        return found

    def health(self) -> Health:
        """Liveness and readiness of the server, and readiness of each model it knows."""
        try:
            return self._health([self._unless_denied(r) for r in self._health_requests()])
        except ServerUnavailableError:
            return self._health(None)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(
        self, request: Request, model: str | None = None, progress: Progress | None = None
    ) -> Any:
        """`request`, sent again after a backoff while the server is unavailable or sheds it
        (see `Attempts`)."""
        attempts = Attempts(self.retry, progress)
        while True:
            try:
                answer = self._attempt(request, model)
            except RetryableError as failure:
                delay = attempts.delay(failure)
                if delay is None:
                    raise
                time.sleep(delay)
            else:
                if progress is not None:
                    progress.answered()
                return answer

    def _attempt(self, request: Request, model: str | None = None) -> Any:
        """`request` once, with tritonclient's errors turned into the SDK's."""
        try:
            return request()
        except Exception as error:
            failure = self._sdk_error(error, model)
            if isinstance(failure, ModelNotFoundError):
                failure = self._not_served(failure.model)
            raise failure from error

    def _unless_denied(self, request: Request) -> Any:
        """`request`'s answer, or None where the server keeps it for its operator."""
        try:
            return self._attempt(request)
        except PermissionDeniedError:
            return None

    def _not_served(self, model: str) -> ModelNotFoundError:
        try:
            return ModelNotFoundError(model, [info.name for info in self.models()])
        except PermissionDeniedError:
            return ModelNotFoundError(model, None)
