"""`Client`: classify texts with an emotion model served by Triton, over gRPC or HTTP."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import numpy as np
from tritonclient.utils import InferenceServerException

from . import protocol as wire
from .errors import (
    EmotritonError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelNotFoundError,
    ServerError,
    ServerUnavailableError,
    UnsupportedModelError,
)
from .results import Classification, ModelInfo

Protocol = Literal["grpc", "http"]
T = TypeVar("T")
DEFAULT_URLS = {"grpc": "localhost:8001", "http": "localhost:8000"}


def encode_texts(texts: Sequence[str]) -> np.ndarray:
    """A BYTES tensor [n, 1] of UTF-8 texts; a bad item is named by its index."""
    encoded = np.empty((len(texts), 1), dtype=object)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"expected str, got {type(text).__name__}", index)
        try:
            encoded[index, 0] = text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(f"not encodable as UTF-8 ({error.reason})", index) from None
    return encoded


def results_from(
    info: ModelInfo, scores: np.ndarray, predicted: np.ndarray, offset: int
) -> list[Classification]:
    results = []
    for row, (row_scores, row_predicted) in enumerate(zip(scores.tolist(), predicted.tolist())):
        by_label = dict(zip(info.labels, row_scores))
        chosen = [label for label, flag in zip(info.labels, row_predicted) if flag]
        chosen.sort(key=by_label.__getitem__, reverse=True)
        results.append(Classification(index=offset + row, scores=by_label, labels=tuple(chosen)))
    return results


class Client:
    """A synchronous client for emotion classifiers served by Triton.

    >>> with Client("localhost:8001") as client:
    ...     client.classify(["Thank you so much!"], model="go_emotions")[0].labels
    ('gratitude',)

    Label names, activation and thresholds come from the server (the ensemble's config), read
    once per model. Calls larger than the model's max batch size are split into several requests.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        protocol: Protocol = "grpc",
        timeout: float | None = 60.0,
        headers: Mapping[str, str] | None = None,
        ssl: bool = False,
        batch_size: int | None = None,
    ) -> None:
        if protocol not in DEFAULT_URLS:
            raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
        self.url = url or DEFAULT_URLS[protocol]
        self.protocol = protocol
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.batch_size = batch_size
        self._triton = importlib.import_module(f"tritonclient.{protocol}")
        if protocol == "grpc":
            self._client = self._triton.InferenceServerClient(self.url, ssl=ssl)
        else:
            network = (
                {}
                if timeout is None
                else {"connection_timeout": timeout, "network_timeout": timeout}
            )
            self._client = self._triton.InferenceServerClient(self.url, ssl=ssl, **network)
        self._models: dict[str, ModelInfo] = {}

    # -- public API --------------------------------------------------------------------------

    def classify(self, texts: str | Sequence[str], *, model: str) -> list[Classification]:
        """One result per text, in order. A single string counts as a list of one."""
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return []
        payload = encode_texts(items)
        info = self.model(model)
        size = min(self.batch_size or info.max_batch_size, info.max_batch_size)
        results: list[Classification] = []
        for start in range(0, len(items), size):
            scores, predicted = self._infer(info.name, payload[start : start + size])
            results.extend(results_from(info, scores, predicted, offset=start))
        return results

    def model(self, name: str) -> ModelInfo:
        """What the server publishes about model `name` (cached)."""
        if name not in self._models:
            config = self._call(lambda: self._model_config(name), model=name)
            self._models[name] = ModelInfo.from_config(config)
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

    # -- transport ---------------------------------------------------------------------------

    def _infer(self, model: str, payload: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        text = self._triton.InferInput(wire.TEXT_INPUT, list(payload.shape), "BYTES")
        text.set_data_from_numpy(payload)
        outputs = [
            self._triton.InferRequestedOutput(wire.SCORES_OUTPUT),
            self._triton.InferRequestedOutput(wire.PREDICTED_OUTPUT),
        ]
        options: dict[str, Any] = {"headers": self.headers}
        if self.protocol == "grpc":
            options["client_timeout"] = self.timeout
        response = self._call(
            lambda: self._client.infer(model, [text], outputs=outputs, **options), model
        )
        return response.as_numpy(wire.SCORES_OUTPUT), response.as_numpy(wire.PREDICTED_OUTPUT)

    def _model_config(self, name: str) -> Mapping[str, Any]:
        if self.protocol == "grpc":
            return self._client.get_model_config(name, headers=self.headers, as_json=True)["config"]
        return self._client.get_model_config(name, headers=self.headers)

    def _ready_model_names(self) -> list[str]:
        if self.protocol == "grpc":
            index = self._call(
                lambda: self._client.get_model_repository_index(headers=self.headers, as_json=True)
            ).get("models", [])
        else:
            index = self._call(
                lambda: self._client.get_model_repository_index(headers=self.headers)
            )
        return [entry["name"] for entry in index if entry.get("state") == "READY"]

    def _call(self, operation: Callable[[], T], model: str | None = None) -> T:
        """Run a tritonclient call, turning its errors into the SDK's."""
        try:
            return operation()
        except EmotritonError:
            raise
        except InferenceServerException as error:
            raise self._translate(
                str(error.status() or ""), error.message() or str(error), model
            ) from error
        except TimeoutError as error:
            raise InferenceTimeoutError(
                f"no answer from {self.url} within {self.timeout}s"
            ) from error
        except OSError as error:  # the HTTP client's connection errors
            raise ServerUnavailableError(self.url, str(error)) from error

    def _translate(self, status: str, message: str, model: str | None) -> EmotritonError:
        if "UNAVAILABLE" in status or "failed to connect" in message.lower():
            return ServerUnavailableError(self.url, message)
        if "DEADLINE_EXCEEDED" in status or "timed out" in message.lower():
            return InferenceTimeoutError(f"no answer from {self.url} within {self.timeout}s")
        if model is not None and "unknown model" in message:
            return ModelNotFoundError(model, [info.name for info in self.models()])
        if "INVALID_ARGUMENT" in status or status == "400":
            return InvalidInputError(message)
        return ServerError(message, status or None)
