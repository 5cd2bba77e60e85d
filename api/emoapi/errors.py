"""The SDK's typed errors as HTTP answers: a status, and a JSON body of the shape
text-embeddings-inference answers with (`{"error": ..., "error_type": ...}`), so that a TEI
caller's error handling keeps working."""

from __future__ import annotations

from collections.abc import Mapping

from emoclient import (
    EmotritonError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelNotFoundError,
    OverloadedError,
    ServerUnavailableError,
    UnsupportedModelError,
)

from .responses import PydanticJSONResponse

# Seconds an overloaded caller is asked to wait (Retry-After) before it tries again.
RETRY_AFTER_S = 1


class ApiError(Exception):
    """A request the front end refuses itself, before Triton sees it."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


def too_many_texts(count: int, limit: int) -> ApiError:
    return ApiError(413, "validation", f"{count} texts, over the limit of {limit} per request")


def unsupported(message: str) -> ApiError:
    return ApiError(422, "validation", message)


# The status and error_type of each SDK error; the first class in the MRO that is listed wins.
_STATUSES: dict[type[EmotritonError], tuple[int, str]] = {
    InvalidInputError: (422, "validation"),
    ModelNotFoundError: (404, "not_found"),
    UnsupportedModelError: (404, "not_found"),
    OverloadedError: (429, "overloaded"),
    ServerUnavailableError: (503, "unhealthy"),
    InferenceTimeoutError: (504, "timeout"),
}


# The error_type of an HTTP error that no route raised (an unknown path, a wrong method, a body
# over the limit).
HTTP_ERROR_TYPES = {401: "unauthorized", 404: "not_found", 413: "validation"}


def error_response(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> PydanticJSONResponse:
    headers = dict(headers or {})
    if status in (429, 503):
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return PydanticJSONResponse({"error": message, "error_type": error_type}, status, headers)


def sdk_error_response(error: EmotritonError) -> PydanticJSONResponse:
    """Any other SDK error is Triton's answer to a request we sent it: a bad gateway."""
    for kind in type(error).__mro__:
        if kind in _STATUSES:
            return error_response(*_STATUSES[kind], str(error))
    return error_response(502, "backend", str(error))
