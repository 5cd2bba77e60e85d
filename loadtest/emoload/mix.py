"""`emotriton bench --mix`: interactive callers beside a bulk job, and each alone.

Real traffic mixes a few bulk jobs with many people waiting for one answer each. Three phases,
back to back on one server, each on texts of its own (so the response cache answers only what
the texts themselves repeat):

- interactive alone: `interactive_clients` clients, each sending one text at a time with a
  random pause after each answer, `1 / interactive_rate` s on average (a person's pace;
  clients without pause would be a flood of their own), for `interactive_seconds`;
- bulk alone: one `AsyncClient.classify` of `bulk_texts` texts (a bulk call by default);
- mixed: the bulk call again, with the interactive clients beside it until it ends.

Reported: the interactive p50/p99 latency and failures, the bulk call's texts/s and outcome, and
the ensemble's response cache hit rate in each phase. Benchmarks measure; nothing here asserts a
timing.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from emoclient import AsyncClient
from emoexport.options import option

from .errors import LoadTestError, require_positive
from .served import CacheCounts, settled

INTERACTIVE_ALONE, BULK_ALONE, MIXED = "interactive alone", "bulk alone", "mixed"


@dataclass(frozen=True)
class MixOptions:
    model: str
    url: str  # gRPC HOST:PORT
    texts: Sequence[str]  # the phases take disjoint slices of these
    interactive_clients: int = option(8, "interactive clients, one text per request", type=int)
    # A person's pace: a text a second or so. The alone phase lasts about as long as the mixed
    # one does with the default bulk call here, so that both p99s come from as many requests.
    interactive_rate: float = option(
        1.0, "each interactive client's pauses are 1/rate s on average", type=float
    )
    interactive_seconds: float = option(
        60.0, "seconds the interactive clients run alone", type=float
    )
    bulk_texts: int = option(10_000, "texts in the bulk call", type=int)
    bulk_concurrency: int = option(
        8, "requests the bulk call keeps in flight (AsyncClient max_concurrency)", type=int
    )
    bulk_batch_size: int | None = option(
        None, "texts per request of the bulk call (default: the SDK's)", type=int
    )

    def __post_init__(self) -> None:
        require_positive(
            {
                "interactive clients": self.interactive_clients,
                "interactive rate": self.interactive_rate,
                "interactive seconds": self.interactive_seconds,
                "bulk texts": self.bulk_texts,
                "bulk concurrency": self.bulk_concurrency,
            }
        )

    def interactive_texts(self) -> int:
        """What the interactive clients send alone, with room to spare: their requests are a
        Poisson count (exponential pauses), whose standard deviation is the square root of its
        mean, so the mean plus 5 of those, and the first request of each client."""
        mean = self.interactive_clients * self.interactive_rate * self.interactive_seconds
        return int(mean + 5 * math.sqrt(mean)) + self.interactive_clients

    def texts_needed(self) -> int:
        """The two bulk calls' texts and the interactive clients' alone, and as many again for
        them in the mixed phase (which gets every text left; running out is an error, not a
        repeat)."""
        return 2 * self.bulk_texts + 2 * self.interactive_texts()


@dataclass
class Phase:
    name: str
    seconds: float
    interactive_requests: int = 0
    interactive_failures: dict[str, int] = field(default_factory=dict)
    interactive_p50_ms: float | None = None
    interactive_p99_ms: float | None = None
    bulk_texts: int = 0
    bulk_error: str | None = None  # the bulk call's exception, if it raised
    bulk_texts_per_s: float | None = None
    cache_hit_rate: float | None = None  # None: the server has no response cache


@dataclass
class MixReport:
    model: str
    machine: str
    interactive_clients: int
    interactive_rate: float
    bulk_concurrency: int
    phases: list[Phase] = field(default_factory=list)

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def ratios(self) -> dict[str, float | None]:
        """Mixed against alone: the interactive p99, and the bulk call's texts/s."""
        alone, bulk, mixed = (self.phase(n) for n in (INTERACTIVE_ALONE, BULK_ALONE, MIXED))
        return {
            "interactive p99, mixed / alone": _ratio(
                mixed.interactive_p99_ms, alone.interactive_p99_ms
            ),
            "bulk texts/s, mixed / alone": _ratio(mixed.bulk_texts_per_s, bulk.bulk_texts_per_s),
        }

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ratios": self.ratios()}, indent=2)

    def to_markdown(self) -> str:
        rows = [
            "| phase | interactive requests | p50 ms | p99 ms | failures | bulk texts/s | "
            "bulk outcome | cache hit rate |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
        ]
        for p in self.phases:
            failures = sum(p.interactive_failures.values()) if p.interactive_requests else ""
            outcome = "" if not p.bulk_texts else (p.bulk_error or "completed")
            hits = "no cache" if p.cache_hit_rate is None else f"{p.cache_hit_rate:.1%}"
            rows.append(
                f"| {p.name} | {p.interactive_requests or ''} | {_ms(p.interactive_p50_ms)} | "
                f"{_ms(p.interactive_p99_ms)} | {failures} | "
                f"{'' if p.bulk_texts_per_s is None else f'{p.bulk_texts_per_s:.0f}'} | "
                f"{outcome} | {hits} |"
            )
        ratios = [f"- {name}: {_x(value)}" for name, value in self.ratios().items()]
        setup = (
            f"{self.model} on {self.machine}: {self.interactive_clients} interactive clients, "
            f"each pausing {1 / self.interactive_rate:g} s on average; the bulk call keeps "
            f"{self.bulk_concurrency} requests in flight."
        )
        return "\n".join([setup, "", *rows, "", *ratios]) + "\n"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


@dataclass
class _Account:
    """The interactive clients' account: latencies of the answered, failures by error type."""

    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def fill(self, phase: Phase) -> None:
        phase.interactive_requests = len(self.latencies) + sum(self.failures.values())
        phase.interactive_failures = dict(self.failures)
        if self.latencies:
            p50, p99 = np.percentile(self.latencies, [50, 99]) * 1000
            phase.interactive_p50_ms, phase.interactive_p99_ms = float(p50), float(p99)


async def _interactive(
    options: MixOptions, texts: Sequence[str], stop: Any, ready: Any
) -> _Account:
    """The interactive clients, each sending at least once, until `stop` (an Event) is set;
    `ready` is set once they are connected."""
    account, pending = _Account(), iter(texts)

    async def client(connection: AsyncClient, seed: int) -> None:
        # A person's pace: a random pause after each answer (exponential, 1/rate on average),
        # so that the clients do not send in step.
        pauses = random.Random(seed)
        await asyncio.sleep(pauses.expovariate(options.interactive_rate))
        while True:
            text = next(pending, None)
            if text is None:
                raise LoadTestError("too few texts for the interactive clients: pass more data")
            started = time.monotonic()
            try:
                await connection.classify(text, model=options.model)
                account.latencies.append(time.monotonic() - started)
            except Exception as error:  # counted by type: the account must be complete
                name = type(error).__name__
                account.failures[name] = account.failures.get(name, 0) + 1
            if stop.is_set():
                return
            await asyncio.sleep(pauses.expovariate(options.interactive_rate))

    async with AsyncClient(options.url) as connection:
        await connection.model(options.model)
        ready.set()
        await asyncio.gather(
            *(client(connection, seed) for seed in range(options.interactive_clients))
        )
    return account


def _interactive_process(
    options: MixOptions, texts: Sequence[str], stop: Any, ready: Any, answer: Any
) -> None:
    """The interactive clients in a process of their own, as other callers are: the bulk
    call's work in the client (building its requests, reading its answers) does not delay
    theirs. Puts the account, or the error, on `answer`."""
    try:
        answer.put(asyncio.run(_interactive(options, texts, stop, ready)))
    except Exception as error:  # raised in the parent
        ready.set()
        answer.put(error)


async def _bulk(options: MixOptions, texts: Sequence[str]) -> str | None:
    """The bulk call; its error, or None."""
    async with AsyncClient(
        options.url, max_concurrency=options.bulk_concurrency, batch_size=options.bulk_batch_size
    ) as client:
        await client.model(options.model)
        try:
            await client.classify(list(texts), model=options.model)
        except Exception as error:  # reported: the bulk call's outcome is a result
            return f"{type(error).__name__}: {error}"
    return None


def _phase(
    options: MixOptions, name: str, bulk: Sequence[str], interactive: Sequence[str] | None
) -> Phase:
    context = multiprocessing.get_context("spawn")  # no fork of a process with gRPC threads
    stop, ready, answer = context.Event(), context.Event(), context.SimpleQueue()
    clients = None
    if interactive is not None:
        clients = context.Process(
            target=_interactive_process, args=(options, interactive, stop, ready, answer)
        )
        clients.start()
        ready.wait()
    started = time.monotonic()
    bulk_error = asyncio.run(_bulk(options, bulk)) if bulk else None
    if not bulk:
        time.sleep(options.interactive_seconds)
    seconds = time.monotonic() - started
    stop.set()
    phase = Phase(name, round(seconds, 2), bulk_texts=len(bulk), bulk_error=bulk_error)
    if bulk and bulk_error is None:
        phase.bulk_texts_per_s = len(bulk) / seconds
    if clients is not None:
        account = answer.get()
        clients.join()
        if isinstance(account, Exception):
            raise account
        account.fill(phase)
    return phase


def run_mix(options: MixOptions, log: Callable[[str], None] = print) -> MixReport:
    from .bench import machine

    texts = list(options.texts)
    if len(texts) < options.texts_needed():
        raise LoadTestError(
            f"--mix needs at least {options.texts_needed()} texts, {len(texts)} given "
            "(pass --data with go_emotions' train.tsv, or fewer --bulk-texts)"
        )
    n, alone = options.bulk_texts, options.interactive_texts()
    bulk_alone, bulk_mixed, rest = texts[:n], texts[n : 2 * n], texts[2 * n :]
    report = MixReport(
        options.model,
        machine(),
        options.interactive_clients,
        options.interactive_rate,
        options.bulk_concurrency,
    )
    plan = [
        (INTERACTIVE_ALONE, [], rest[:alone]),
        (BULK_ALONE, bulk_alone, None),
        (MIXED, bulk_mixed, rest[alone:]),
    ]
    read_cache = partial(CacheCounts.read, options.url, options.model)
    for name, bulk, interactive in plan:
        log(f"{name}")
        before = settled(read_cache)
        phase = _phase(options, name, bulk, interactive)
        after = settled(read_cache)
        phase.cache_hit_rate = (after - before).hit_rate
        report.phases.append(phase)
    return report


def plot(report: MixReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    alone, bulk, mixed = (report.phase(n) for n in (INTERACTIVE_ALONE, BULK_ALONE, MIXED))
    figure, (latency, throughput) = pyplot.subplots(1, 2, figsize=(9, 3.2))
    for offset, (phase, color) in enumerate(((alone, "tab:gray"), (mixed, "tab:blue"))):
        values = [phase.interactive_p50_ms or 0.0, phase.interactive_p99_ms or 0.0]
        latency.bar(np.arange(2) + 0.38 * offset, values, 0.38, label=phase.name, color=color)
    latency.set_xticks(np.arange(2) + 0.19, ["p50", "p99"])
    latency.set_ylabel("interactive latency, ms")
    latency.legend(fontsize=8)
    speeds = [bulk.bulk_texts_per_s or 0.0, mixed.bulk_texts_per_s or 0.0]
    throughput.bar([BULK_ALONE, MIXED], speeds, color=["tab:gray", "tab:blue"])
    throughput.set_ylabel("bulk call, texts/s")
    figure.suptitle(f"{report.model}: interactive callers beside a bulk call", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path
