"""What `Client` and `AsyncClient` share: everything but the I/O.

Request payloads, splitting a call into requests, per-call decision overrides (threshold, top-k),
result parsing, the translation of tritonclient's errors into the SDK's, and the retry policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from tritonclient.utils import InferenceServerException

from . import protocol as wire
from .errors import (
    EmotritonError,
    InferenceTimeoutError,
    InvalidInputError,
    ServerError,
    ServerUnavailableError,
)
from .results import Classification, Health, ModelInfo

Protocol = Literal["grpc", "http"]
Threshold = float | Mapping[str, float] | None
DEFAULT_URLS = {"grpc": "localhost:8001", "http": "localhost:8000"}
DEFAULT_MAX_TEXT_BYTES = wire.MAX_TEXT_BYTES


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of transient failures (server unreachable or not ready), with exponential
    backoff. Errors that cannot succeed on a retry (bad input, unknown model, timeouts) are
    raised at once."""

    attempts: int = 3
    backoff: float = 0.2  # seconds before the first retry; doubles each time
    max_backoff: float = 2.0

    def delays(self) -> list[float]:
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


def texts_of(texts: str | Sequence[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)


def encode_texts(texts: Sequence[str], max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES) -> np.ndarray:
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


def chunks(total: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


@dataclass(frozen=True)
class Decision:
    """How one call turns scores into labels: the served rule, or the caller's override."""

    thresholds: np.ndarray | None  # None: keep the served decision
    top_k: int | None

    @classmethod
    def for_call(cls, info: ModelInfo, threshold: Threshold, top_k: int | None) -> Decision:
        if top_k is not None and top_k < 1:
            raise InvalidInputError(f"top_k must be at least 1, not {top_k}")
        if threshold is None:
            return cls(None, top_k)
        if isinstance(threshold, (int, float)):
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
        self, info: ModelInfo, scores: np.ndarray, predicted: np.ndarray, offset: int
    ) -> list[Classification]:
        if self.thresholds is not None:
            predicted = scores >= self.thresholds
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


def translate(status: str, message: str, url: str, timeout: float | None) -> EmotritonError | None:
    """The SDK's error for a tritonclient status and message; None for an unknown model, which
    the caller turns into ModelNotFoundError (it needs the served models' names)."""
    lowered = message.lower()
    if "UNAVAILABLE" in status or "failed to connect" in lowered:
        return ServerUnavailableError(url, message)
    if "DEADLINE_EXCEEDED" in status or "timed out" in lowered or "deadline" in lowered:
        return InferenceTimeoutError(f"no answer from {url} within {timeout}s")
    if "unknown model" in lowered or "NOT_FOUND" in status:
        return None
    if "INVALID_ARGUMENT" in status or status == "400":
        return InvalidInputError(message)
    return ServerError(message, status or None)


def sdk_error(error: Exception, url: str, timeout: float | None) -> EmotritonError | None:
    """The SDK's error for an exception from tritonclient (or its HTTP stack); None when the
    model is unknown, which the caller reports with the names of the served models. Any
    other exception is not the server's answer: it is raised as it is."""
    if isinstance(error, InferenceServerException):
        return translate(str(error.status() or ""), error.message() or str(error), url, timeout)
    if isinstance(error, TimeoutError):
        return InferenceTimeoutError(f"no answer from {url} within {timeout}s")
    if isinstance(error, OSError):  # the HTTP clients' connection errors
        return ServerUnavailableError(url, str(error))
    raise error


def health_of(live: bool, ready: bool, index: Any, protocol: Protocol) -> Health:
    entries = index.get("models", []) if protocol == "grpc" else index
    models = {entry["name"]: entry.get("state") == "READY" for entry in entries}
    return Health(live=bool(live), ready=bool(ready), models=models)


def inference_inputs(module: Any, payload: np.ndarray) -> tuple[list[Any], list[Any]]:
    """tritonclient InferInput/RequestedOutput objects for a [n, 1] payload."""
    text = module.InferInput(wire.TEXT_INPUT, list(payload.shape), "BYTES")
    text.set_data_from_numpy(payload)
    outputs = [
        module.InferRequestedOutput(wire.SCORES_OUTPUT),
        module.InferRequestedOutput(wire.PREDICTED_OUTPUT),
    ]
    return [text], outputs


def outputs_of(response: Any) -> tuple[np.ndarray, np.ndarray]:
    return response.as_numpy(wire.SCORES_OUTPUT), response.as_numpy(wire.PREDICTED_OUTPUT)


def ready_names(index: Any, protocol: Protocol) -> list[str]:
    """READY model names from a repository index, in either protocol's shape."""
    entries = index.get("models", []) if protocol == "grpc" else index
    return [entry["name"] for entry in entries if entry.get("state") == "READY"]


def config_of(response: Any, protocol: Protocol) -> Mapping[str, Any]:
    return response["config"] if protocol == "grpc" else response


def connection_options(
    protocol: Protocol,
    timeout: float | None,
    retry: RetryPolicy,
    ssl: bool,
    root_certificates: str | None,
    private_key: str | None,
    certificate_chain: str | None,
) -> dict[str, Any]:
    """Keyword arguments of the synchronous InferenceServerClient: TLS, timeouts, channel."""
    if protocol == "grpc":
        return {
            "ssl": ssl,
            "root_certificates": root_certificates,
            "private_key": private_key,
            "certificate_chain": certificate_chain,
            "channel_args": grpc_channel_args(retry),
        }
    options: dict[str, Any] = {"ssl": ssl}
    if ssl:
        options["ssl_options"] = {
            k: v
            for k, v in {
                "ca_certs": root_certificates,
                "keyfile": private_key,
                "certfile": certificate_chain,
            }.items()
            if v
        }
    if timeout is not None:
        options["connection_timeout"] = timeout
        options["network_timeout"] = timeout
    return options
