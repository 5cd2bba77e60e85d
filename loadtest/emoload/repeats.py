"""`emotriton bench --repeats`: traffic that repeats itself, with and without the response cache.

Real traffic repeats itself (short replies, template messages); go_emotions, a deduplicated
dataset, does not: 184 of its 43,410 train texts (0.4%) repeat an earlier one. So the replay's
repeat share is a stated assumption, not a measurement: each request repeats the text of an
earlier request with probability `repeat_share`, chosen uniformly among the earlier requests
(Simon's 1955 model: a text grows more popular the more it was sent, which gives the Zipf-like
popularity measured in request logs), and is otherwise the next text of the data, in order.

Two local servers on one repository, one without a cache and one with, both up at once (an
idle one costs nothing: no thread spins). Half the texts go without repeats, then the replay of
the other half, at `clients` clients of one text per request, in `rounds` parts: each part goes
to both servers in turn, which one first alternating, so that the machine's drift during the
run (±20% between runs on shared cores) falls on both alike. Triton's statistics give what the
cache costs: the time of its lookups and inserts, against the CPU time a text had.
Benchmarks measure; nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from emoexport.options import option

from .bench import Call, Run, latencies_of, machine, warmed
from .errors import LoadTestError
from .served import CacheCounts, counted_metrics, read_metrics

if TYPE_CHECKING:
    from emoserve import LocalServer

NO_REPEATS = "no repeats"


def replay(texts: Sequence[str], repeat_share: float, seed: int = 0) -> list[str]:
    """As many requests' texts as `texts`: see the module's docstring."""
    pick = random.Random(seed)
    fresh = iter(texts)
    sent: list[str] = []
    for _ in texts:
        repeat = sent and pick.random() < repeat_share
        sent.append(pick.choice(sent) if repeat else next(fresh))
    return sent


@dataclass(frozen=True)
class RepeatsOptions:
    model: str
    repository: Path  # served by a local server without a cache, then by one with
    texts: Sequence[str]
    repeat_share: float = option(
        0.3, "share of the replay's requests that repeat an earlier text", type=float
    )
    clients: int = option(32, "clients, one text per request", type=int)
    cache_mib: int = option(256, "the cached server's response cache, MiB", type=int)
    rounds: int = option(
        6, "parts each workload is sent in, each part to both servers in turn", type=int
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.repeat_share < 1.0:
            raise LoadTestError(f"repeat share is in [0, 1), not {self.repeat_share}")
        if self.clients < 1 or self.cache_mib < 1 or self.rounds < 1:
            raise LoadTestError("clients, cache MiB and rounds must be at least 1")


@dataclass
class Served:
    cache_mib: int  # 0: no cache
    workload: str
    run: Run
    cache: CacheCounts  # all zero without a cache


@dataclass
class RepeatsReport:
    model: str
    machine: str
    texts: int
    repeat_share: float
    clients: int
    rounds: int
    runs: list[Served] = field(default_factory=list)

    def texts_per_s(self, cached: bool, workload: str) -> float:
        return next(
            s.run.texts_per_s
            for s in self.runs
            if bool(s.cache_mib) == cached and s.workload == workload
        )

    def ratios(self) -> dict[str, float]:
        """Served texts/s with the cache against without, on each workload."""
        return {
            workload: round(self.texts_per_s(True, workload) / self.texts_per_s(False, workload), 3)
            for workload in dict.fromkeys(s.workload for s in self.runs)
        }

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ratios": self.ratios()}, indent=2)

    def to_markdown(self) -> str:
        rows = [
            "| workload | response cache | texts/s | p50 ms | p95 ms | cache hit rate | "
            "cache µs/lookup | share of the CPU per text |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in self.runs:
            cache = f"{s.cache_mib} MiB" if s.cache_mib else "none"
            rate, lookup_us = s.cache.hit_rate, s.cache.us_per_lookup
            used = " |  | "
            if rate is not None and lookup_us is not None:
                # The cache's time against the CPU time a text had: its lookups and inserts run
                # on the same cores as everything else.
                cpu_us_per_text = 1e6 * (os.cpu_count() or 1) / s.run.texts_per_s
                used = f"{rate:.1%} | {lookup_us:.0f} | {lookup_us / cpu_us_per_text:.2%}"
            rows.append(
                f"| {s.workload} | {cache} | {s.run.texts_per_s:.0f} | {s.run.p50_ms:.1f} | "
                f"{s.run.p95_ms:.1f} | {used} |"
            )
        setup = (
            f"{self.model} on {self.machine}: {self.texts} requests of one text at "
            f"{self.clients} clients, in {self.rounds} rounds of both servers."
        )
        ratios = [f"- {w}: {r:.2f}x with the cache" for w, r in self.ratios().items()]
        return "\n".join([setup, "", *rows, "", *ratios]) + "\n"


def run_repeats(options: RepeatsOptions, log: Callable[[str], None] = print) -> RepeatsReport:
    from emoclient import Client
    from emoserve import LocalServer

    # Each workload on texts of its own: the replay's first sending of a text is a miss.
    half = len(options.texts) // 2
    replayed = f"{options.repeat_share:.0%} repeats"
    workloads = {
        NO_REPEATS: list(options.texts[:half]),
        replayed: replay(options.texts[half : 2 * half], options.repeat_share),
    }
    report = RepeatsReport(
        options.model, machine(), half, options.repeat_share, options.clients, options.rounds
    )
    sizes = (0, options.cache_mib)
    log(f"two local servers, response caches of {' and '.join(f'{m} MiB' for m in sizes)}")
    with ExitStack() as stack:
        servers = [
            stack.enter_context(LocalServer(options.repository, cache_bytes=mib * 2**20))
            for mib in sizes
        ]

        def make_call(server: LocalServer) -> Callable[[list[str]], object]:
            client = stack.enter_context(Client(server.endpoints.grpc_url))
            return lambda batch: client.classify(batch, model=options.model)

        # Warmed on a text no workload sends (no entry cached for it); each server's counters,
        # with every answer so far counted.
        clients, readings = [], []
        for server in servers:
            reading = read_metrics(server.endpoints.metrics_url)
            clients.append(
                warmed(partial(make_call, server), options.clients, ["warming up, not replayed"])
            )
            answered = {options.model: options.clients}
            readings.append(counted_metrics(server.endpoints.metrics_url, reading, answered))
        for workload, sent in workloads.items():
            log(workload)
            results = [
                _Measured(
                    server, reading, CacheCounts.read(server.endpoints.grpc_url, options.model)
                )
                for server, reading in zip(servers, readings)
            ]
            bounds = [len(sent) * i // options.rounds for i in range(options.rounds + 1)]
            for turn, (start, end) in enumerate(pairwise(bounds)):
                for i in (0, 1) if turn % 2 == 0 else (1, 0):
                    results[i].add(clients[i], options.model, sent[start:end])
            for mib, result in zip(sizes, results):
                report.runs.append(result.served(mib, workload, options.model))
            readings = [result.metrics for result in results]
    return report


@dataclass
class _Measured:
    """One server's parts of one workload, added up."""

    server: LocalServer
    metrics: dict[tuple[str, str], float]  # its counters, every answer so far counted
    cache_before: CacheCounts  # its cache's, before the first part
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    texts: int = 0

    def add(self, calls: Sequence[Call], model: str, texts: list[str]) -> None:
        seconds, latencies = latencies_of([[text] for text in texts], calls)
        url = self.server.endpoints.metrics_url
        self.metrics = counted_metrics(url, self.metrics, {model: len(texts)})
        self.seconds += seconds
        self.latencies += latencies
        self.texts += len(texts)

    def served(self, cache_mib: int, workload: str, model: str) -> Served:
        run = Run.of(workload, self.texts, self.seconds, self.latencies)
        cache = CacheCounts.read(self.server.endpoints.grpc_url, model) - self.cache_before
        return Served(cache_mib, workload, run, cache)


def plot(report: RepeatsReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    workloads = list(dict.fromkeys(s.workload for s in report.runs))
    figure, axes = pyplot.subplots(figsize=(6, 3))
    for offset, (cached, color) in enumerate(((False, "tab:gray"), (True, "tab:blue"))):
        speeds = [report.texts_per_s(cached, w) for w in workloads]
        label = "response cache" if cached else "no cache"
        axes.bar(
            [i + 0.4 * offset for i in range(len(workloads))], speeds, 0.4, label=label, color=color
        )
    axes.set_xticks([i + 0.2 for i in range(len(workloads))], workloads)
    axes.set_ylabel(f"texts/s, {report.clients} clients")
    axes.legend(fontsize=8)
    axes.set_title(f"{report.model}: repeated texts, {report.machine}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
