"""emoclient: the SDK for emotion classifiers served by emotriton on Triton.

from emoclient import Client

with Client("localhost:8001") as client:
    for result in client.classify(["Thank you so much!"], model="go_emotions"):
        print(result.labels, result.top(3))
"""

from ._base_client import DEFAULT_URLS, Priority, RetryPolicy
from .async_client import AsyncClient
from .client import Client
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
    UnsupportedModelError,
    WrongProtocolError,
)
from .results import Classification, Health, ModelInfo

__all__ = [
    "DEFAULT_URLS",
    "AsyncClient",
    "Classification",
    "Client",
    "ConfigurationError",
    "EmotritonError",
    "Health",
    "InferenceTimeoutError",
    "InvalidInputError",
    "ModelInfo",
    "ModelNotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "Priority",
    "RetryPolicy",
    "RetryableError",
    "ServerError",
    "ServerUnavailableError",
    "UnsupportedModelError",
    "WrongProtocolError",
]
