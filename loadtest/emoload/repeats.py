"""`emotriton bench --repeats`: traffic that repeats itself, with and without the response cache.

Real traffic repeats itself (short replies, template messages); go_emotions, a deduplicated
dataset, does not: 184 of its 43,410 train texts (0.4%) repeat an earlier one. So the replay's
repeat share is a stated assumption, not a measurement: each request repeats the text of an
earlier request with probability `repeat_share`, chosen uniformly among the earlier requests
(Simon's 1955 model: a text grows more popular the more it was sent, which gives the Zipf-like
popularity measured in request logs), and is otherwise the next text of the data, in order.

Two local servers on one repository, one after the other, one without a cache and one with;
each serves half the texts without repeats, then the replay of the other half, at `clients`
clients of one text per request. Benchmarks measure; nothing here asserts a timing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from emoexport.options import option

from .bench import Run, machine, timed, warmed
from .errors import LoadTestError
from .served import cache_hit_rate, counted_metrics, read_metrics

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

    def __post_init__(self) -> None:
        if not 0.0 <= self.repeat_share < 1.0:
            raise LoadTestError(f"repeat share is in [0, 1), not {self.repeat_share}")
        if self.clients < 1 or self.cache_mib < 1:
            raise LoadTestError("clients and cache MiB must be at least 1")


@dataclass
class Served:
    cache_mib: int  # 0: no cache
    workload: str
    run: Run
    cache_hit_rate: float | None


@dataclass
class RepeatsReport:
    model: str
    machine: str
    texts: int
    repeat_share: float
    clients: int
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
            "| workload | response cache | texts/s | p50 ms | p95 ms | cache hit rate |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for s in self.runs:
            cache = f"{s.cache_mib} MiB" if s.cache_mib else "none"
            hits = "" if s.cache_hit_rate is None else f"{s.cache_hit_rate:.1%}"
            rows.append(
                f"| {s.workload} | {cache} | {s.run.texts_per_s:.0f} | {s.run.p50_ms:.1f} | "
                f"{s.run.p95_ms:.1f} | {hits} |"
            )
        setup = (
            f"{self.model} on {self.machine}: {self.texts} requests of one text at "
            f"{self.clients} clients."
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
    report = RepeatsReport(options.model, machine(), half, options.repeat_share, options.clients)
    for cache_mib in (0, options.cache_mib):
        log(f"local server, response cache: {cache_mib} MiB")
        with LocalServer(options.repository, cache_bytes=cache_mib * 2**20) as server:
            metrics_url = server.endpoints.metrics_url
            for workload, sent in workloads.items():
                with ExitStack() as clients:

                    def make_call() -> Callable[[list[str]], object]:
                        client = clients.enter_context(Client(server.endpoints.grpc_url))
                        return lambda batch: client.classify(batch, model=options.model)

                    # Warmed on a text the workload does not send (no entry cached for it).
                    reading = read_metrics(metrics_url)
                    calls = warmed(make_call, options.clients, ["warming up, not replayed"])
                    answered = {options.model: options.clients}
                    before = counted_metrics(metrics_url, reading, answered)
                    run = timed(workload, [[text] for text in sent], calls)
                    after = counted_metrics(metrics_url, before, {options.model: len(sent)})
                    hits = cache_hit_rate(before, after, options.model)
                report.runs.append(Served(cache_mib, workload, run, hits))
    return report


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
