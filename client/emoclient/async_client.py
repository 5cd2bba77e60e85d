"""`AsyncClient`: the same surface as `Client`, for asyncio, with bounded concurrency."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._base_client import (
    Attempts,
    BaseClient,
    Priority,
    Progress,
    Request,
    Texts,
    Threshold,
    checked_threshold,
    require_at_least_one,
)
from .errors import (
    ModelNotFoundError,
    PermissionDeniedError,
    RetryableError,
    ServerUnavailableError,
    UnsupportedModelError,
)
from .results import Classification, Health, ModelInfo

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._base_client import ClientOptions


class AsyncClient(BaseClient):
    """An asyncio client for emotion classifiers served by Triton; see `Client` for the options.

    A call of many texts is split into requests of at most `batch_size` texts, of which at most
    `max_concurrency` are in flight at once; results come back in the order of the texts.
    Such a call is bulk, as with `Client`: served behind interactive requests, and paced to
    what the server accepts.

    >>> async with AsyncClient("localhost:8001") as client:
    ...     results = await client.classify(texts, model="go_emotions")
    """

    _asynchronous = True

    def __init__(
        self, url: str | None = None, *, max_concurrency: int = 4, **options: Unpack[ClientOptions]
    ) -> None:
        require_at_least_one("max_concurrency", max_concurrency)
        super().__init__(url, **options)
        self.max_concurrency = max_concurrency

    async def classify(
        self,
        texts: Texts,
        *,
        model: str,
        top_k: int | None = None,
        threshold: Threshold = None,
        priority: Priority | None = None,
    ) -> list[Classification]:
        """One result per text, in order; see `Client.classify`."""
        payload = self._payload(texts)
        threshold = checked_threshold(threshold)
        if not len(payload):
            return []
        call = self._plan(await self.model(model), payload, threshold, top_k, priority)
        if len(call.requests) == 1:  # the interactive call: no task to gather, nothing to bound
            return call.results([await self._send(call.requests[0], model, call.progress)])
        bound = asyncio.Semaphore(self.max_concurrency)

        async def send(request: Request) -> Any:
            async with bound:
                return await self._send(request, model, call.progress)

        return call.results(await asyncio.gather(*map(send, call.requests)))

    async def model(self, name: str) -> ModelInfo:
        """See `Client.model`."""
        if name in self._models:
            return self._models[name]
        return self._remember(name, await self._send(self._config_request(name), name))

    async def models(self) -> list[ModelInfo]:
        """See `Client.models`."""
        found = []
        for name in self._ready_names(await self._send(self._index_request())):
            try:
                found.append(await self.model(name))
            except UnsupportedModelError:
                continue
        return found

    async def health(self) -> Health:
        """See `Client.health`."""
        try:
            return self._health([await self._unless_denied(r) for r in self._health_requests()])
        except ServerUnavailableError:
            return self._health(None)

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _send(
        self, request: Request, model: str | None = None, progress: Progress | None = None
    ) -> Any:
        """See `Client._send`."""
        attempts = Attempts(self.retry, progress)
        while True:
            try:
                answer = await self._attempt(request, model)
            except RetryableError as failure:
                delay = attempts.delay(failure)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
            else:
                if progress is not None:
                    progress.answered()
                return answer

    async def _attempt(self, request: Request, model: str | None = None) -> Any:
        """`request` once, within the timeout, with tritonclient's errors turned into the SDK's."""
        try:
            if self.protocol == "grpc":  # its deadline bounds it: no task to wrap it in
                return await request()
            return await asyncio.wait_for(request(), self.timeout)
        except Exception as error:
            failure = self._sdk_error(error, model)
            if isinstance(failure, ModelNotFoundError):
                failure = await self._not_served(failure.model)
            raise failure from error

    async def _unless_denied(self, request: Request) -> Any:
        """See `Client._unless_denied`."""
        try:
            return await self._attempt(request)
        except PermissionDeniedError:
            return None

    async def _not_served(self, model: str) -> ModelNotFoundError:
        try:
            return ModelNotFoundError(model, [info.name for info in await self.models()])
        except PermissionDeniedError:
            return ModelNotFoundError(model, None)
