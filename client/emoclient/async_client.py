"""`AsyncClient`: the same surface as `Client`, for asyncio, with bounded concurrency."""

from __future__ import annotations

import asyncio
import importlib
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    encode_texts,
    grpc_channel_args,
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


class AsyncClient:
    """An asyncio client for emotion classifiers served by Triton; see `Client`.

    A call of many texts is split into requests of at most `batch_size` texts, of which at most
    `max_concurrency` are in flight at once; results come back in the order of the texts.

    >>> async with AsyncClient("localhost:8001") as client:
    ...     results = await client.classify(texts, model="go_emotions")
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
        max_concurrency: int = 4,
        retry: RetryPolicy | None = None,
        max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
    ) -> None:
        if protocol not in DEFAULT_URLS:
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.url = url or DEFAULT_URLS[protocol]
        self.protocol = protocol
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self.max_text_bytes = max_text_bytes
        self._triton = importlib.import_module(f"tritonclient.{protocol}.aio")
        if protocol == "grpc":
            self._client = self._triton.InferenceServerClient(
                self.url,
                ssl=ssl,
                root_certificates=root_certificates,
                private_key=private_key,
                certificate_chain=certificate_chain,
                channel_args=grpc_channel_args(self.retry),
            )
        else:
            context = None
            if ssl:
                context = ssl_module.create_default_context(cafile=root_certificates)
                if certificate_chain:
                    context.load_cert_chain(certificate_chain, private_key)
            self._client = self._triton.InferenceServerClient(
                self.url, ssl=ssl, ssl_context=context
            )
        self._models: dict[str, ModelInfo] = {}

    async def classify(
        self,
        texts: str | Sequence[str],
        *,
        model: str,
        top_k: int | None = None,
        threshold: Threshold = None,
    ) -> list[Classification]:
        """One result per text, in order; see `Client.classify`."""
        items = texts_of(texts)
        if not items:
            return []
        payload = encode_texts(items, self.max_text_bytes)
        info = await self.model(model)
        decision = Decision.for_call(info, threshold, top_k)
        size = min(self.batch_size or info.max_batch_size, info.max_batch_size)
        bound = asyncio.Semaphore(self.max_concurrency)

        async def classify_part(part: slice) -> list[Classification]:
            async with bound:
                scores, predicted = await self._infer(info.name, payload[part])
            return decision.results(info, scores, predicted, part.start)

        parts = await asyncio.gather(*(classify_part(part) for part in chunks(len(items), size)))
        return [result for part in parts for result in part]

    async def model(self, name: str) -> ModelInfo:
        """What the server publishes about model `name` (read once, then cached)."""
        if name not in self._models:
            config = await self._call(
                lambda: self._client.get_model_config(name, **self._config_options()), name
            )
            self._models[name] = ModelInfo.from_config(config_of(config, self.protocol))
        return self._models[name]

    async def models(self) -> list[ModelInfo]:
        """The emotion classifiers the server has ready."""
        found = []
        for name in await self._ready_model_names():
            try:
                found.append(await self.model(name))
            except UnsupportedModelError:
                continue
        return found

    async def health(self) -> Health:
        """Liveness and readiness of the server, and readiness of each model it knows."""
        try:
            live = await self._attempt(lambda: self._client.is_server_live(headers=self.headers))
            ready = await self._attempt(lambda: self._client.is_server_ready(headers=self.headers))
            index = await self._attempt(
                lambda: self._client.get_model_repository_index(**self._config_options())
            )
        except ServerUnavailableError:
            return Health(live=False, ready=False, models={})
        return health_of(live, ready, index, self.protocol)

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _config_options(self) -> dict[str, Any]:
        return {"headers": self.headers, **({"as_json": True} if self.protocol == "grpc" else {})}

    async def _infer(self, model: str, payload: Any) -> tuple[Any, Any]:
        inputs, outputs = inference_inputs(self._triton, payload)
        response = await self._call(
            lambda: self._client.infer(model, inputs, outputs=outputs, headers=self.headers), model
        )
        return outputs_of(response)

    async def _ready_model_names(self) -> list[str]:
        index = await self._call(
            lambda: self._client.get_model_repository_index(**self._config_options())
        )
        return ready_names(index, self.protocol)

    async def _call(self, operation: Callable[[], Awaitable[T]], model: str | None = None) -> T:
        """`_attempt`, retried with backoff while the server is unavailable."""
        for delay in [*self.retry.delays(), None]:
            try:
                return await self._attempt(operation, model)
            except ServerUnavailableError:
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(self, operation: Callable[[], Awaitable[T]], model: str | None = None) -> T:
        """Run a tritonclient call once, within the timeout, turning its errors into the SDK's."""
        try:
            return await asyncio.wait_for(operation(), self.timeout)
        except EmotritonError:
            raise
        except Exception as error:
            translated = sdk_error(error, self.url, self.timeout)
            if translated is not None:
                raise translated from error
            if model is None:
                raise ServerError(str(error)) from error
            raise ModelNotFoundError(model, [m.name for m in await self.models()]) from error
