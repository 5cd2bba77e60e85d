"""What one front end serves, and to whom."""

from __future__ import annotations

from dataclasses import dataclass

from emoclient import ConfigurationError
from emoserve.admin import MIN_KEY_LENGTH  # each key as long as the admin key must be
from emoserve.http_rules import MAX_BODY_BYTES
from emoserve.tracing import Tracing

# Texts per request: what a caller may send in one body (the SDK splits it into Triton requests
# of the model's batch size). text-embeddings-inference's `max_client_batch_size` is 32.
DEFAULT_MAX_TEXTS = 1024


@dataclass(frozen=True)
class ApiSettings:
    triton_url: str  # gRPC HOST:PORT
    models: tuple[str, ...]  # the ensembles it serves; the first is the default (/predict)
    api_keys: frozenset[str] = frozenset()  # empty: inference is open
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call; empty: none
    max_texts: int = DEFAULT_MAX_TEXTS
    max_body_bytes: int = MAX_BODY_BYTES  # Triton's HTTP guard's limit
    tracing: Tracing | None = None  # where its spans go, sampled as Triton's

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigurationError("name at least one served model")
        short = [key for key in self.api_keys if len(key) < MIN_KEY_LENGTH]
        if short:
            raise ConfigurationError(f"an API key must be at least {MIN_KEY_LENGTH} characters")
        if "*" in self.cors_origins:
            raise ConfigurationError(
                "list the origins that may call the API: '*' lets every site in"
            )
        if self.max_texts < 1 or self.max_body_bytes < 1:
            raise ConfigurationError("max_texts and max_body_bytes must be at least 1")
