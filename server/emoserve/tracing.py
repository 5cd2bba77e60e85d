"""OpenTelemetry tracing of the served requests: where spans go and which requests are traced,
shared by Triton and the JSON API in front of it so that one request is one trace."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import LauncherError

# Triton's own default: 1 request in 1000 of those that arrive without a trace context.
DEFAULT_TRACE_RATE = 1000
TRITON_SERVICE = "triton"


@dataclass(frozen=True)
class Tracing:
    """Spans exported over OTLP/HTTP to `url` (a collector's traces endpoint, such as
    http://collector:4318/v1/traces). Every request that carries a sampled W3C trace context is
    traced; of the others, 1 in `rate` (0: none)."""

    url: str
    rate: int = DEFAULT_TRACE_RATE

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LauncherError(
                f"the trace URL {self.url!r} is not an OTLP/HTTP endpoint such as "
                "http://collector:4318/v1/traces"
            )
        if self.rate < 0:
            raise LauncherError(f"the trace rate must not be negative: {self.rate}")

    @property
    def ratio(self) -> float:
        """The share of requests without a context that are traced."""
        return 1 / self.rate if self.rate else 0.0

    def triton_flags(self) -> list[str]:
        """Triton's OpenTelemetry mode: it joins a propagated context, whatever its rate."""
        return [
            "--trace-config=mode=opentelemetry",
            "--trace-config=level=TIMESTAMPS",
            f"--trace-config=rate={self.rate}",
            "--trace-config=count=-1",
            f"--trace-config=opentelemetry,url={self.url}",
            f"--trace-config=opentelemetry,resource=service.name={TRITON_SERVICE}",
        ]
