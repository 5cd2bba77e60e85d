"""The served ensemble as Triton reports on it: its composing models, and their counters in
/metrics over an interval (what bench and overload report per model)."""

from __future__ import annotations

import re
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import TypeVar

from .errors import LoadTestError

Reading = TypeVar("Reading")


@dataclass(frozen=True)
class ModelStats:
    """One Triton model over one run, from the differences of its /metrics counters."""

    model: str
    requests: int
    texts: int  # Triton's inference count: a request of n texts counts n
    executions: int
    queue_ms: float  # per request
    compute_ms: float  # per request (a batch's compute time counts for each request in it)

    @property
    def average_batch(self) -> float:
        """Texts per execution."""
        return self.texts / self.executions if self.executions else 0.0


_SAMPLE = re.compile(
    r'^(nv_(?:inference|cache)_[a-z_]+)\{model="([^"]+)",version="[^"]*"\} ([0-9.e+]+)$'
)
_SUCCESS = "nv_inference_request_success"  # a response-cache hit counts too
_COUNTERS = {
    "requests": _SUCCESS,
    "texts": "nv_inference_count",
    "executions": "nv_inference_exec_count",
    "queue_us": "nv_inference_queue_duration_us",
    "compute_us": "nv_inference_compute_infer_duration_us",
}


def read_metrics(url: str) -> dict[tuple[str, str], float]:
    """Triton's per-model counters: (metric, model) → value, summed over the model's versions.
    A model's counters can stand under two: Triton 2.51 reports an ensemble's under version 1
    whatever its version (ensemble_scheduler.cc creates its reporter so), and an export installs
    version 2, 3, ... when it replaces one."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[tuple[str, str], float] = defaultdict(float)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[(match[1], match[2])] += float(match[3])
    return dict(samples)


def settled(read: Callable[[], Reading], timeout: float = 2.0) -> Reading:
    """What `read` returns once two readings agree: Triton counts a request just after answering
    it. Best effort, for runs whose number of requests the caller cannot know (SDK retries,
    another process's clients); `counted_metrics` is exact."""
    reading = read()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        previous, reading = reading, read()
        if reading == previous:
            break
    return reading


def settled_metrics(url: str) -> dict[tuple[str, str], float]:
    return settled(partial(read_metrics, url))


def counted_metrics(
    url: str,
    since: dict[tuple[str, str], float],
    answered: Mapping[str, int],
    inferred: Mapping[str, int] | None = None,
    timeout: float = 30.0,
) -> dict[tuple[str, str], float]:
    """The counters once each model of `answered` has counted that many more successful requests
    than in `since`, and each of `inferred` that many more texts. Triton counts a request just
    after answering it, and a backend reports its batch's statistics (texts, executions) after
    each request's, so a reading taken as the last answer arrives can miss either. LoadTestError
    when Triton has not counted them by `timeout`."""
    expected = {(_SUCCESS, model): n for model, n in answered.items()}
    expected |= {(_COUNTERS["texts"], model): n for model, n in (inferred or {}).items()}
    deadline = time.monotonic() + timeout
    while True:
        reading = read_metrics(url)
        missing = {
            f"{metric} of {model}": n - counted
            for (metric, model), n in expected.items()
            if (counted := int(reading.get((metric, model), 0.0) - since.get((metric, model), 0.0)))
            < n
        }
        if not missing:
            return reading
        if time.monotonic() > deadline:
            raise LoadTestError(
                f"after {timeout:.0f} s, Triton still had not counted answers it sent: {missing}"
            )
        time.sleep(0.05)


def composing_models(repository: Path, ensemble: str) -> list[str]:
    """The models the ensemble's steps call, in order; LoadTestError when `repository` has no
    ensemble of that name."""
    from emoexport.inprocess import read_config

    if not (repository / ensemble / "config.pbtxt").is_file():
        raise LoadTestError(f"{repository} has no model {ensemble!r}")
    steps = read_config(repository / ensemble).ensemble_scheduling.step
    if not steps:
        raise LoadTestError(f"{repository}/{ensemble} is not an ensemble")
    return [step.model_name for step in steps]


def model_stats(
    before: dict[tuple[str, str], float],
    after: dict[tuple[str, str], float],
    models: Sequence[str],
) -> list[ModelStats]:
    """Each of `models` over the interval between two readings of the metrics."""

    def delta(key: str, model: str) -> float:
        metric = _COUNTERS[key]
        return after.get((metric, model), 0.0) - before.get((metric, model), 0.0)

    stats = []
    for model in models:
        requests = int(delta("requests", model))
        per_request = 1e-3 / requests if requests else 0.0
        stats.append(
            ModelStats(
                model,
                requests,
                int(delta("texts", model)),
                int(delta("executions", model)),
                delta("queue_us", model) * per_request,
                delta("compute_us", model) * per_request,
            )
        )
    return stats


@dataclass(frozen=True)
class CacheCounts:
    """An ensemble's response cache, from Triton's statistics extension: its lookups that hit and
    that missed, and their time (a miss's with the insert of what was then computed). /metrics
    has them only for version 1 of an ensemble: Triton 2.51 creates an ensemble's metrics
    reporter at version 1 and without cache metrics, so a hit of version 2 is counted nowhere
    there."""

    hits: int = 0
    misses: int = 0
    hit_ns: int = 0
    miss_ns: int = 0

    @classmethod
    def read(cls, grpc_url: str, model: str) -> CacheCounts:
        """The counts now, summed over the model's versions; LoadTestError for a model the server
        does not have."""
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        with grpcclient.InferenceServerClient(grpc_url) as client:
            try:
                answer = client.get_inference_statistics(model, as_json=True)
            except InferenceServerException as error:
                raise LoadTestError(f"no statistics of {model}: {error.message()}") from None

        stats = [version["inference_stats"] for version in answer.get("model_stats", [])]

        def total(kind: str, field: str) -> int:
            # protobuf's JSON: 64-bit numbers as strings, zeros left out
            return sum(int(version.get(kind, {}).get(field, 0)) for version in stats)

        return cls(
            hits=total("cache_hit", "count"),
            misses=total("cache_miss", "count"),
            hit_ns=total("cache_hit", "ns"),
            miss_ns=total("cache_miss", "ns"),
        )

    def __sub__(self, earlier: CacheCounts) -> CacheCounts:
        return CacheCounts(
            *(getattr(self, f.name) - getattr(earlier, f.name) for f in fields(CacheCounts))
        )

    @property
    def hit_rate(self) -> float | None:
        """None where nothing was looked up: a server without a cache."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    @property
    def us_per_lookup(self) -> float | None:
        lookups = self.hits + self.misses
        return (self.hit_ns + self.miss_ns) / lookups / 1e3 if lookups else None
