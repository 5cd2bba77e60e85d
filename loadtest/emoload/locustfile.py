"""Locust users for an emotion model served by Triton.

- `GrpcUser` calls through emoclient over gRPC (made gevent-friendly, as Locust runs on gevent).
- `HttpUser` speaks Triton's HTTP/REST (KServe v2) protocol directly.
- `BulkGrpcUser`, beside either, is a bulk job: --bulk-users of it (Locust's fixed count), each
  sending calls of --bulk-texts texts through emoclient, which the server serves behind the
  other users' requests and which pace themselves to what it accepts.

Each of the others sends a single short text (weight 3) or a batch of --batch-size texts
(weight 1), drawn from --corpus. Every request is reported twice: once as itself (`single`,
`batch`, `bulk`), and once per text it carried, as type TEXTS, so Locust's report shows texts
per second beside requests per second. (Locust's Aggregated row mixes both; read the named
rows.) With --report-dir, the run's summary and CSV files are written there when the test stops
(see emoload.summary); its latency percentiles are of the other users' requests, not of the bulk
calls.

    locust -f loadtest/emoload/locustfile.py GrpcUser --host localhost:8001 --model go_emotions
    locust -f loadtest/emoload/locustfile.py GrpcUser BulkGrpcUser --users 9 --bulk-users 1 ...
"""

from __future__ import annotations

import contextlib
import csv
import random
import time
from functools import cache
from pathlib import Path

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel: gRPC's I/O must yield to gevent's loop

import gevent  # noqa: E402
import numpy as np  # noqa: E402
from locust import FastHttpUser, User, constant, events, task  # noqa: E402
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV  # noqa: E402

from emoclient import (  # noqa: E402
    Client,
    EmotritonError,
    RetryPolicy,
    ServerError,
    ServerUnavailableError,
)
from emoclient.protocol import PREDICTED_OUTPUT, SCORES_OUTPUT, TEXT_INPUT  # noqa: E402
from emoload.corpus import DEFAULT_CORPUS, read_corpus  # noqa: E402
from emoload.summary import (  # noqa: E402
    EXCEPTIONS_CSV,
    FAILURES_CSV,
    STATS_CSV,
    LoadSummary,
)

# gevent's loop caches its clock, and nothing has run it during the imports above (seconds on a
# busy machine): Locust would start --run-time's timer from that stale time, and stop early.
gevent.get_hub().loop.update_now()

TEXTS_TYPE = "TEXTS"
BULK = "bulk"  # the name of BulkGrpcUser's requests
_latencies: list[float] = []  # milliseconds of every request (not texts) of the current test


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--model", default="go_emotions", help="served ensemble name")
    parser.add_argument("--batch-size", type=int, default=16, help="texts in a batch request")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="texts, one per line")
    parser.add_argument("--report-dir", default="", help="write the summary and CSVs here")
    parser.add_argument("--bulk-users", type=int, default=1, help="BulkGrpcUsers among --users")
    parser.add_argument("--bulk-texts", type=int, default=1000, help="texts in a bulk call")


@events.init.add_listener
def _bulk_users(environment, **kwargs) -> None:
    if environment.parsed_options is not None:
        BulkGrpcUser.fixed_count = environment.parsed_options.bulk_users


corpus = cache(read_corpus)


def record(
    environment, texts: int, elapsed: float, error: Exception | None, bulk: bool = False
) -> None:
    """Keep the request's latency (not a bulk call's), and report one TEXTS event per text it
    carried."""
    if not bulk:
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


def sampled(environment, count: int) -> list[str]:
    return random.choices(corpus(environment.parsed_options.corpus), k=count)


class _EmotionTasks(User):
    """The two weighted tasks, over whatever `_classify` sends."""

    abstract = True
    wait_time = constant(0)

    def _classify(self, texts: list[str], name: str) -> None:
        raise NotImplementedError  # each protocol's user sends its own way

    @task(3)
    def single(self) -> None:
        self._classify(sampled(self.environment, 1), "single")

    @task(1)
    def batch(self) -> None:
        self._classify(
            sampled(self.environment, self.environment.parsed_options.batch_size), "batch"
        )


class _GrpcSender(User):
    """emoclient over gRPC, for the users below."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.client = Client(self.host, timeout=60, retry=RetryPolicy(attempts=1))
        # Read the labels once, outside the measured requests. If the server cannot answer,
        # each request reports why; a failed on_start would leave the client open, and a
        # gevent gRPC channel left open keeps Locust from exiting.
        with contextlib.suppress(EmotritonError):
            self.client.model(self.environment.parsed_options.model)

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
        record(self.environment, len(texts), elapsed, error, bulk=name == BULK)


class GrpcUser(_GrpcSender, _EmotionTasks):
    """emoclient over gRPC."""


class BulkGrpcUser(_GrpcSender):
    """A bulk job: one call of --bulk-texts texts after another."""

    fixed_count = 1

    @task
    def bulk(self) -> None:
        self._classify(sampled(self.environment, self.environment.parsed_options.bulk_texts), BULK)


class HttpUser(_EmotionTasks, FastHttpUser):
    """Triton's HTTP/REST (KServe v2) protocol, as any HTTP client would speak it."""

    def _classify(self, texts: list[str], name: str) -> None:
        model = self.environment.parsed_options.model
        body = {
            "inputs": [
                {"name": TEXT_INPUT, "shape": [len(texts), 1], "datatype": "BYTES", "data": texts}
            ],
            "outputs": [{"name": SCORES_OUTPUT}, {"name": PREDICTED_OUTPUT}],
        }
        started = time.perf_counter()
        with self.rest("POST", f"/v2/models/{model}/infer", json=body, name=name) as response:
            error = self._error(response)
            if error is not None:
                response.failure(error)
        # FastHttpUser has reported the request itself.
        record(self.environment, len(texts), (time.perf_counter() - started) * 1000, error)

    def _error(self, response) -> EmotritonError | None:
        """Why `response` holds no scores, in the SDK's words."""
        if response.content is None:  # no HTTP answer: refused, reset, timed out
            return ServerUnavailableError(self.host or "", str(response.error))
        if response.status_code != 200:
            return ServerError(response.text or "", status=f"HTTP {response.status_code}")
        outputs = {output["name"]: output for output in (response.js or {}).get("outputs", [])}
        if not outputs.get(SCORES_OUTPUT, {}).get("data"):
            return ServerError(f"no {SCORES_OUTPUT} in the response")
        return None


@events.test_start.add_listener
def _forget_latencies(**kwargs) -> None:
    _latencies.clear()


@events.test_stop.add_listener
def _write_reports(environment, **kwargs) -> None:
    """The summary and the CSVs, from the stats as they stand once every user has stopped.

    Locust's own --csv rewrites its files once a second and not after the last requests, so it
    would lag the summary; these are written together, from one snapshot.
    """
    folder = environment.parsed_options.report_dir
    if not folder:
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stats = environment.stats
    requests = [entry for entry in stats.entries.values() if entry.method != TEXTS_TYPE]
    count = sum(entry.num_requests for entry in requests)
    texts = stats.get("texts", TEXTS_TYPE).num_requests
    seconds = (stats.last_request_timestamp or stats.start_time) - stats.start_time
    per_s = 1 / seconds if seconds > 0 else 0.0
    p50, p95, p99 = (
        np.percentile(_latencies, [50, 95, 99]).tolist() if _latencies else (None, None, None)
    )
    LoadSummary(
        users=environment.parsed_options.num_users,
        requests=count,
        failures=sum(entry.num_failures for entry in requests),
        texts=texts,
        seconds=seconds,
        requests_per_s=count * per_s,
        texts_per_s=texts * per_s,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
    ).write(folder)
    tables = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for name, write in (
        (STATS_CSV, tables.requests_csv),
        (FAILURES_CSV, tables.failures_csv),
        (EXCEPTIONS_CSV, tables.exceptions_csv),
    ):
        with (folder / name).open("w", newline="") as file:
            write(csv.writer(file))
