"""What one Locust run leaves in its folder. The locustfile writes the summary and the CSV
files from one final snapshot of Locust's stats, so they agree; the runner reads the summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

SUMMARY_FILE = "summary.json"
STATS_CSV = "locust_stats.csv"
FAILURES_CSV = "locust_failures.csv"
EXCEPTIONS_CSV = "locust_exceptions.csv"
HTML_REPORT = "report.html"
LOG_FILE = "locust.log"


@dataclass(frozen=True)
class LoadSummary:
    """Requests (not texts) and their exact latency percentiles; None when none completed."""

    users: int
    requests: int
    failures: int
    texts: int
    seconds: float
    requests_per_s: float
    texts_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def failed(self) -> bool:
        return self.failures > 0 or self.requests == 0

    def write(self, folder: Path) -> Path:
        path = folder / SUMMARY_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, folder: Path) -> LoadSummary:
        return cls(**json.loads((folder / SUMMARY_FILE).read_text()))

    def __str__(self) -> str:
        latency = (
            "no latency (no request completed)"
            if self.p50_ms is None
            else f"latency p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms"
        )
        return (
            f"{self.requests} requests ({self.texts} texts) in {self.seconds:.1f} s: "
            f"{self.requests_per_s:.1f} requests/s, {self.texts_per_s:.1f} texts/s; "
            f"{latency}; {self.failures} failed"
        )
