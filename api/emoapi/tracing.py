"""The front end's spans: one per HTTP request, joined to the caller's trace context, exported
where Triton's go. The SDK carries the active span's context on to Triton (emoclient's
trace_headers), so Triton's spans of the request are its children."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from emoserve.tracing import Tracing

API_SERVICE = "emotriton-api"


def traced(app: FastAPI, tracing: Tracing) -> TracerProvider:
    """`app` instrumented: a request with a sampled context is traced, and 1 in `tracing.rate`
    of the others, as Triton samples. Shut the provider down to send the last spans."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: API_SERVICE}),
        sampler=ParentBased(TraceIdRatioBased(tracing.ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=tracing.url)))
    # Without the ASGI send and receive spans: one span per request, and Triton's under it.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, exclude_spans=["send", "receive"]
    )
    return provider
