"""`Client`: classify texts with an emotion model served by Triton, over gRPC or HTTP."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from ._core import (
    DEFAULT_MAX_TEXT_BYTES,
    DEFAULT_URLS,
    Decision,
    Protocol,
    RetryPolicy,
    Threshold,
    chunks,
    config_of,
    connection_options,
    encode_texts,
    health_of,
    inference_inputs,
    outputs_of,
    ready_names,
    sdk_error,
    texts_of,
)
from .errors import (
    EmotritonError,
    ModelNotFoundError,
    ServerError,
    ServerUnavailableError,
    UnsupportedModelError,
)
from .results import Classification, Health, ModelInfo

T = TypeVar("T")


class Client:
    """A synchronous client for emotion classifiers served by Triton.

    >>> with Client("localhost:8001") as client:
    ...     client.classify("Thank you so much!", model="go_emotions")[0].labels
    ('gratitude',)

    Label names, activation and thresholds come from the server (the ensemble's config), read
    once per model. A call of more texts than the model's max batch size (or `batch_size`) is
    sent as several requests; results come back in the order of the texts.

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
    """

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
    ) -> None:
        if protocol not in DEFAULT_URLS:
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        self.url = url or DEFAULT_URLS[protocol]
        self.protocol = protocol
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self.max_text_bytes = max_text_bytes
        self._triton = importlib.import_module(f"tritonclient.{protocol}")
        options = connection_options(
            protocol, timeout, self.retry, ssl, root_certificates, private_key, certificate_chain
        )
        self._client = self._triton.InferenceServerClient(self.url, **options)
        self._models: dict[str, ModelInfo] = {}

    def classify(
        self,
        texts: str | Sequence[str],
        *,
        model: str,
        top_k: int | None = None,
        threshold: Threshold = None,
    ) -> list[Classification]:
        """One result per text, in order; a single string counts as a list of one.

        `threshold` (one number, or label → number) replaces the served thresholds for this
        call: a label is predicted when its score is at least its threshold. `top_k` keeps at
        most the k best of the predicted labels.
        """
        items = texts_of(texts)
        if not items:
            return []
        payload = encode_texts(items, self.max_text_bytes)
        info = self.model(model)
        decision = Decision.for_call(info, threshold, top_k)
        size = min(self.batch_size or info.max_batch_size, info.max_batch_size)
        results: list[Classification] = []
        for part in chunks(len(items), size):
            scores, predicted = self._infer(info.name, payload[part])
            results.extend(decision.results(info, scores, predicted, part.start))
        return results

    def model(self, name: str) -> ModelInfo:
        """What the server publishes about model `name` (read once, then cached)."""
        if name not in self._models:
            config = self._call(
                lambda: self._client.get_model_config(name, **self._config_options()), name
            )
            self._models[name] = ModelInfo.from_config(config_of(config, self.protocol))
        return self._models[name]

    def models(self) -> list[ModelInfo]:
        """The emotion classifiers the server has ready."""
        found = []
        for name in self._ready_model_names():
            try:
                found.append(self.model(name))
            except UnsupportedModelError:
                continue
        return found

    def health(self) -> Health:
        """Liveness and readiness of the server, and readiness of each model it knows."""
        try:
            live = self._attempt(lambda: self._client.is_server_live(headers=self.headers))
            ready = self._attempt(lambda: self._client.is_server_ready(headers=self.headers))
            index = self._attempt(
                lambda: self._client.get_model_repository_index(**self._config_options())
            )
        except ServerUnavailableError:
            return Health(live=False, ready=False, models={})
        return health_of(live, ready, index, self.protocol)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _config_options(self) -> dict[str, Any]:
        return {"headers": self.headers, **({"as_json": True} if self.protocol == "grpc" else {})}

    def _infer(self, model: str, payload: Any) -> tuple[Any, Any]:
        inputs, outputs = inference_inputs(self._triton, payload)
        options: dict[str, Any] = {"headers": self.headers}
        if self.protocol == "grpc":
            options["client_timeout"] = self.timeout
        response = self._call(
            lambda: self._client.infer(model, inputs, outputs=outputs, **options), model
        )
        return outputs_of(response)

    def _ready_model_names(self) -> list[str]:
        index = self._call(
            lambda: self._client.get_model_repository_index(**self._config_options())
        )
        return ready_names(index, self.protocol)

    def _call(self, operation: Callable[[], T], model: str | None = None) -> T:
        """`_attempt`, retried with backoff while the server is unavailable."""
        for delay in [*self.retry.delays(), None]:
            try:
                return self._attempt(operation, model)
            except ServerUnavailableError:
                if delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(self, operation: Callable[[], T], model: str | None = None) -> T:
        """Run a tritonclient call once, turning its errors into the SDK's."""
        try:
            return operation()
        except EmotritonError:
            raise
        except Exception as error:
            translated = sdk_error(error, self.url, self.timeout)
            if translated is not None:
                raise translated from error
            if model is None:
                raise ServerError(str(error)) from error
            raise ModelNotFoundError(model, [m.name for m in self.models()]) from error
