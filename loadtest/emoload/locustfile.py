"""Locust users for an emotion model served by Triton.

- `GrpcUser` calls through emoclient over gRPC (made gevent-friendly, as Locust runs on gevent).
- `HttpUser` speaks Triton's HTTP/REST (KServe v2) protocol directly.

Each user sends a single short text (weight 3) or a batch of --batch-size texts (weight 1), drawn
from --corpus. Every request is reported twice: once as itself (`single`, `batch`), and once per
text it carried, as type TEXTS, so Locust's report shows texts per second beside requests per
second. (Locust's Aggregated row mixes both; read the named rows.)

    locust -f loadtest/emoload/locustfile.py GrpcUser --host localhost:8001 --model go_emotions
"""

from __future__ import annotations

import json
import random
import statistics
import time
from functools import cache
from pathlib import Path

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel: gRPC's I/O must yield to gevent's loop

from locust import FastHttpUser, User, constant, events, task  # noqa: E402

from emoclient import Client, EmotritonError, RetryPolicy  # noqa: E402

DEFAULT_CORPUS = Path(__file__).with_name("corpus.txt")
TEXTS_TYPE = "TEXTS"
_latencies: list[float] = []  # milliseconds of every request (not texts), for the summary


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--model", default="go_emotions", help="served ensemble name")
    parser.add_argument("--batch-size", type=int, default=16, help="texts in a batch request")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="texts, one per line")
    parser.add_argument("--summary-json", default="", help="write the run's summary here")


@cache
def corpus(path: str) -> tuple[str, ...]:
    texts = tuple(line for line in Path(path).read_text(encoding="utf-8").splitlines() if line)
    if not texts:
        raise ValueError(f"corpus {path} has no texts")
    return texts


def record(environment, texts: int, elapsed: float, error: Exception | None) -> None:
    """Keep the request's latency, and report one TEXTS event per text it carried."""
    _latencies.append(elapsed)
    for _ in range(texts):
        environment.events.request.fire(
            request_type=TEXTS_TYPE,
            name="texts",
            response_time=elapsed,
            response_length=0,
            exception=error,
            context={},
        )


class _EmotionTasks(User):
    """The two weighted tasks, over whatever `_classify` sends."""

    abstract = True
    wait_time = constant(0)

    def texts(self, count: int) -> list[str]:
        options = self.environment.parsed_options
        return random.sample(corpus(options.corpus), count)

    @task(3)
    def single(self) -> None:
        self._classify(self.texts(1), "single")

    @task(1)
    def batch(self) -> None:
        self._classify(self.texts(self.environment.parsed_options.batch_size), "batch")


class GrpcUser(_EmotionTasks):
    """emoclient over gRPC."""

    def on_start(self) -> None:
        self.client = Client(self.host, timeout=60, retry=RetryPolicy(attempts=1))
        self.client.model(self.environment.parsed_options.model)  # labels, read once

    def on_stop(self) -> None:
        self.client.close()

    def _classify(self, texts: list[str], name: str) -> None:
        started, error = time.perf_counter(), None
        try:
            self.client.classify(texts, model=self.environment.parsed_options.model)
        except EmotritonError as failure:
            error = failure
        elapsed = (time.perf_counter() - started) * 1000
        self.environment.events.request.fire(
            request_type="gRPC",
            name=name,
            response_time=elapsed,
            response_length=len(texts),
            exception=error,
            context={},
        )
        record(self.environment, len(texts), elapsed, error)


class HttpUser(_EmotionTasks, FastHttpUser):
    """Triton's HTTP/REST (KServe v2) protocol, as any HTTP client would speak it."""

    def _classify(self, texts: list[str], name: str) -> None:
        model = self.environment.parsed_options.model
        body = {
            "inputs": [
                {"name": "TEXT", "shape": [len(texts), 1], "datatype": "BYTES", "data": texts}
            ],
            "outputs": [{"name": "SCORES"}, {"name": "PREDICTED"}],
        }
        started, error = time.perf_counter(), None
        with self.rest("POST", f"/v2/models/{model}/infer", json=body, name=name) as response:
            if response.status_code != 200:
                error = RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
            elif len(response.js["outputs"][0]["data"]) == 0:
                error = RuntimeError("no scores in the response")
            if error is not None:
                response.failure(error)
        # FastHttpUser has reported the request itself.
        record(self.environment, len(texts), (time.perf_counter() - started) * 1000, error)


@events.quitting.add_listener
def _write_summary(environment, **kwargs) -> None:
    """Exact request percentiles and rates, for `emotriton loadtest` (single-process runs)."""
    path = environment.parsed_options.summary_json
    stats = environment.stats
    if not path or not _latencies:
        return
    texts = stats.get("texts", TEXTS_TYPE)
    duration = max(stats.last_request_timestamp - stats.start_time, 1e-9)
    requests = sum(e.num_requests for e in stats.entries.values() if e.method != TEXTS_TYPE)
    failures = sum(e.num_failures for e in stats.entries.values() if e.method != TEXTS_TYPE)
    quantiles = statistics.quantiles(_latencies, n=100) if len(_latencies) > 1 else _latencies * 99
    summary = {
        "requests": requests,
        "failures": failures,
        "texts": texts.num_requests,
        "seconds": duration,
        "requests_per_s": requests / duration,
        "texts_per_s": texts.num_requests / duration,
        "p50_ms": quantiles[49],
        "p95_ms": quantiles[94],
        "p99_ms": quantiles[98],
    }
    Path(path).write_text(json.dumps(summary, indent=2) + "\n")
