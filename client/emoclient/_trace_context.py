"""The caller's OpenTelemetry trace context, carried to Triton in each request's headers (gRPC
metadata, HTTP headers), so that Triton's spans of a request join the caller's trace."""

from __future__ import annotations


def trace_headers() -> dict[str, str]:
    """The W3C `traceparent` (and `tracestate`) of the caller's active span when it is sampled;
    empty without OpenTelemetry or a sampled span. Only a sampled one: Triton traces every
    request that carries a context, whatever its flags say."""
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        return {}
    if not trace.get_current_span().get_span_context().trace_flags.sampled:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
