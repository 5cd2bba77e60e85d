"""`emotriton overload`: requests at a fixed rate above capacity, and an account of each one.

Closed-loop clients (Locust users, bench's) wait for each answer, so an overloaded server only
slows them down and the backlog never grows. Real traffic does not wait. This first measures
the server's capacity with closed-loop clients, then sends requests open-loop at a multiple of
it: one every 1/rate s, each with the SDK's deadline and no retry, whether or not earlier ones
were answered. Every request ends as served (with its latency), shed (OverloadedError, with how
fast), timed out, or failed. Triton's metrics say how many texts each model computed: what the
encoder computed beyond the texts answered was computed for callers that had gone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from emoclient import AsyncClient, InferenceTimeoutError, OverloadedError, RetryPolicy
from emoexport.options import option

from .errors import LoadTestError, require_positive
from .served import ModelStats, model_stats, settled_metrics

SERVED, SHED, TIMED_OUT = "served", "shed", "timed out"


@dataclass(frozen=True)
class OverloadOptions:
    model: str
    url: str  # gRPC HOST:PORT
    metrics_url: str
    models: Sequence[str]  # the ensemble's composing models, whose computed texts are counted
    texts: Sequence[str]
    multiple: float = option(2.0, "open-loop rate as a multiple of the capacity", type=float)
    rate: float | None = option(
        None, "open-loop requests/s (default: --multiple x capacity)", type=float
    )
    duration: float = option(30.0, "seconds of open-loop load", type=float)
    timeout: float = option(
        5.0, "each request's deadline in seconds (the SDK's timeout)", type=float
    )
    capacity_clients: int = option(32, "closed-loop clients that measure the capacity", type=int)
    capacity_seconds: float = option(10.0, "seconds the capacity is measured for", type=float)
    bulk_texts: int = option(
        0, "texts of a bulk call sent beside the open loop, served behind it (0: none)", type=int
    )

    def __post_init__(self) -> None:
        require_positive(
            {
                "multiple": self.multiple,
                "rate": self.rate if self.rate is not None else 1.0,
                "duration": self.duration,
                "timeout": self.timeout,
                "capacity clients": self.capacity_clients,
                "capacity seconds": self.capacity_seconds,
            }
        )
        if self.bulk_texts < 0:
            raise LoadTestError(f"bulk texts must not be negative, not {self.bulk_texts}")


@dataclass(frozen=True)
class Outcome:
    kind: str  # SERVED, SHED, TIMED_OUT, or the error's type name
    seconds: float  # from sending to the answer or the error


def _p(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


@dataclass
class OverloadReport:
    capacity_rps: float | None  # closed-loop requests/s, when measured
    rate_rps: float  # exact: the open loop sends int(rate_rps * duration_s) requests
    duration_s: float
    timeout_s: float
    sent: int
    outcomes: dict[str, int]
    served_p50_ms: float | None
    served_p99_ms: float | None
    served_max_ms: float | None
    shed_p50_ms: float | None
    shed_p99_ms: float | None
    texts_answered: int
    # Per composing model, from Triton's metrics: texts computed (those refused excluded), and
    # the average queue and compute time per request.
    triton: list[ModelStats] = field(default_factory=list)
    bulk: Outcome | None = None  # the bulk call beside the open loop, when one was sent
    bulk_texts: int = 0

    @classmethod
    def of(
        cls,
        outcomes: list[Outcome],
        capacity: float | None,
        options: OverloadOptions,
        rate: float,
        triton: list[ModelStats],
        bulk: Outcome | None,
    ) -> OverloadReport:
        served = [o.seconds for o in outcomes if o.kind == SERVED]
        shed = [o.seconds for o in outcomes if o.kind == SHED]
        return cls(
            capacity_rps=None if capacity is None else round(capacity, 1),
            rate_rps=rate,
            duration_s=options.duration,
            timeout_s=options.timeout,
            sent=len(outcomes),
            outcomes=dict(Counter(o.kind for o in outcomes)),
            served_p50_ms=_p(served, 50),
            served_p99_ms=_p(served, 99),
            served_max_ms=_p(served, 100),
            shed_p50_ms=_p(shed, 50),
            shed_p99_ms=_p(shed, 99),
            texts_answered=len(served)
            + (options.bulk_texts if bulk and bulk.kind == SERVED else 0),
            triton=triton,
            bulk=bulk,
            bulk_texts=options.bulk_texts,
        )

    def computed_for_nobody(self) -> dict[str, int]:
        """Texts each model computed beyond those answered: for callers that had gone."""
        return {stats.model: stats.texts - self.texts_answered for stats in self.triton}

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "computed_for_nobody": self.computed_for_nobody()})

    def to_markdown(self) -> str:
        served = f"{self.served_p50_ms} / {self.served_p99_ms} / {self.served_max_ms} ms"
        rows = [
            ("offered", f"{self.rate_rps:.1f} requests/s for {self.duration_s:.0f} s"),
            ("capacity (closed loop)", f"{self.capacity_rps} requests/s"),
            ("sent", str(self.sent)),
            *((kind, str(n)) for kind, n in sorted(self.outcomes.items())),
            ("served p50 / p99 / max", f"{served} (deadline {self.timeout_s * 1000:.0f} ms)"),
            ("shed: p50 / p99 time to the refusal", f"{self.shed_p50_ms} / {self.shed_p99_ms} ms"),
        ]
        if self.bulk is not None:
            rows.append(
                (
                    f"bulk call of {self.bulk_texts} texts beside",
                    f"{self.bulk.kind} after {self.bulk.seconds:.1f} s",
                )
            )
        summary = ["| | |", "| --- | ---: |", *(f"| {a} | {b} |" for a, b in rows)]
        nobody = self.computed_for_nobody()
        models = [
            "| model | texts computed | for nobody | queue ms/request | compute ms/request |",
            "| --- | ---: | ---: | ---: | ---: |",
            *(
                f"| {m.model} | {m.texts} | {nobody[m.model]} | {m.queue_ms:.1f} | "
                f"{m.compute_ms:.1f} |"
                for m in self.triton
            ),
        ]
        return "\n".join([*summary, "", *models])


async def _one(client: AsyncClient, model: str, texts: str | list[str]) -> Outcome:
    started = time.monotonic()
    try:
        await client.classify(texts, model=model)
        kind = SERVED
    except OverloadedError:
        kind = SHED
    except InferenceTimeoutError:
        kind = TIMED_OUT
    except Exception as error:  # counted and reported by type: the account must be complete
        kind = type(error).__name__
    return Outcome(kind, time.monotonic() - started)


async def _closed_loop(options: OverloadOptions) -> float:
    """Requests/s that `capacity_clients` clients, each waiting for its answer, get served."""
    async with AsyncClient(options.url, timeout=options.timeout) as client:
        stop = time.monotonic() + options.capacity_seconds
        served = 0

        async def loop(worker: int) -> None:
            nonlocal served
            i = worker
            while time.monotonic() < stop:
                text = options.texts[i % len(options.texts)]
                outcome = await _one(client, options.model, text)
                served += outcome.kind == SERVED  # after the await: no update is lost
                i += options.capacity_clients

        started = time.monotonic()
        await asyncio.gather(*(loop(w) for w in range(options.capacity_clients)))
        return served / (time.monotonic() - started)


async def _open_loop(options: OverloadOptions, rate: float) -> list[Outcome]:
    once = RetryPolicy(attempts=1)  # a retry would be a request the schedule did not send
    async with AsyncClient(options.url, timeout=options.timeout, retry=once) as client:
        started = time.monotonic()
        tasks = []
        for i in range(int(rate * options.duration)):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            text = options.texts[i % len(options.texts)]
            tasks.append(asyncio.create_task(_one(client, options.model, text)))
        return list(await asyncio.gather(*tasks))


async def _beside_bulk(options: OverloadOptions, rate: float) -> tuple[list[Outcome], Outcome]:
    """The open loop, and a bulk call of `bulk_texts` beside it (the SDK's defaults: it is
    served behind the open loop's requests, and sends again what the server sheds)."""
    texts = [options.texts[i % len(options.texts)] for i in range(options.bulk_texts)]
    async with AsyncClient(options.url) as client:
        bulk = asyncio.create_task(_one(client, options.model, texts))
        outcomes = await _open_loop(options, rate)
        return outcomes, await bulk


def run_overload(options: OverloadOptions, log: Callable[[str], None] = print) -> OverloadReport:
    capacity = None
    rate = options.rate
    if rate is None:
        log(
            f"measuring capacity: {options.capacity_clients} closed-loop clients, "
            f"{options.capacity_seconds:.0f} s"
        )
        capacity = asyncio.run(_closed_loop(options))
        rate = options.multiple * capacity
    log(f"open loop: {rate:.0f} requests/s for {options.duration:.0f} s")
    before = settled_metrics(options.metrics_url)
    bulk = None
    if options.bulk_texts:
        outcomes, bulk = asyncio.run(_beside_bulk(options, rate))
    else:
        outcomes = asyncio.run(_open_loop(options, rate))
    triton = model_stats(before, settled_metrics(options.metrics_url), options.models)
    return OverloadReport.of(outcomes, capacity, options, rate, triton, bulk)
