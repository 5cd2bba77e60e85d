"""One exception hierarchy: catch `EmotritonError` for all of them."""

from __future__ import annotations

from collections.abc import Sequence


class EmotritonError(Exception):
    """Base of every error the SDK raises."""


class ConfigurationError(EmotritonError, ValueError):
    """A client option is invalid (an unknown protocol, a TLS file that cannot be read, ...);
    raised when the client is built, before anything connects."""


class RetryableError(EmotritonError):
    """A failure that the same call may not meet again a moment later; the clients retry
    these with backoff (RetryPolicy)."""


class ServerUnavailableError(RetryableError):
    """Nothing answered at the URL (server down, wrong address, or not ready), the connection
    closed before the answer came, or the model has no version loaded (a server restart, or a
    model loading or unloading)."""

    def __init__(self, url: str, detail: str = "") -> None:
        super().__init__(f"no Triton server reachable at {url}" + (f": {detail}" if detail else ""))
        self.url = url


class OverloadedError(RetryableError):
    """The server shed the request: the model's queue was full, or the request waited in it
    past its deadline (the client's timeout, which the SDK sends as the request's)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"the server at {url} is overloaded: {detail}")
        self.url = url


class WrongProtocolError(EmotritonError):
    """The server at the URL speaks the other protocol: an HTTP client at Triton's gRPC port,
    or a gRPC client at its HTTP port. Not retried: the same call cannot succeed."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"{url} {detail}")
        self.url = url


class ModelNotFoundError(EmotritonError):
    """The server does not serve a model of that name. `available` names the models it has,
    or is None where the server lists them to its operator only (gRPC without admin_key)."""

    def __init__(self, model: str, available: Sequence[str] | None) -> None:
        if available is None:  # over gRPC, Triton lists its models to its operator only
            super().__init__(
                f"model {model!r} is not served (the served ones are listed over HTTP, in "
                "/v2/repository/index, and to a client with the admin key)"
            )
        else:
            served = ", ".join(sorted(available)) or "none"
            super().__init__(f"model {model!r} is not served; the server has: {served}")
        self.model = model
        self.available = None if available is None else tuple(available)


class UnsupportedModelError(EmotritonError):
    """The model exists but is not an emotion classifier exported by emotriton."""


class InvalidInputError(EmotritonError):
    """A text cannot be sent: not a string, or not encodable as UTF-8."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message if index is None else f"text {index}: {message}")
        self.index = index


class PermissionDeniedError(EmotritonError):
    """The server restricts this API (the model repository index, say) to callers with its
    admin key; pass `admin_key=`."""


class InferenceTimeoutError(EmotritonError):
    """The server did not answer within the client's timeout."""


class ServerError(EmotritonError):
    """Triton answered with an error; `message` is Triton's."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message if status is None else f"[{status}] {message}")
        self.message = message
        self.status = status
