"""A stand-in OpenTelemetry collector: it takes OTLP/HTTP exports, as Triton's exporter and the
Python SDK's send them, and keeps their spans for the tests to read."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACES_PATH = "/v1/traces"  # OTLP/HTTP's


@dataclass(frozen=True)
class Span:
    service: str  # the exporter's service.name
    name: str
    trace_id: str  # hex, as in a traceparent
    span_id: str
    parent_id: str  # "" for a root


# OTLP's JSON writes the ids in hex (Triton's exporter sends JSON); protobuf's JSON reads bytes
# as base64.
_IDS = ("traceId", "spanId", "parentSpanId")


def base64_ids(fields: dict[str, Any]) -> dict[str, Any]:
    for key in _IDS:
        if isinstance(fields.get(key), str):
            fields[key] = base64.b64encode(bytes.fromhex(fields[key])).decode()
    return fields


def spans_of(export: ExportTraceServiceRequest) -> list[Span]:
    spans = []
    for resource_spans in export.resource_spans:
        attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        service = attributes.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            spans += [
                Span(service, s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex())
                for s in scope_spans.spans
            ]
    return spans


class Collector:
    """Listens on a free loopback port until stopped; `url` is its traces endpoint."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._arrived = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                export = ExportTraceServiceRequest()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    json_format.ParseDict(json.loads(body, object_hook=base64_ids), export)
                else:
                    export.ParseFromString(body)
                with collector._arrived:
                    collector.spans += spans_of(export)
                    collector._arrived.notify_all()
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == TRACES_PATH else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{TRACES_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def of_trace(self, trace_id: str) -> list[Span]:
        with self._arrived:
            return [span for span in self.spans if span.trace_id == trace_id]

    def wait_for(self, trace_id: str, services: set[str], timeout: float = 60.0) -> list[Span]:
        """The trace's spans once each of `services` has sent some (exporters send in batches,
        every few seconds); AssertionError with what came when one has not by `timeout`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                spans = [span for span in self.spans if span.trace_id == trace_id]
                if services <= {span.service for span in spans}:
                    return spans
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"after {timeout:.0f} s, trace {trace_id}: {spans}")
                self._arrived.wait(left)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
