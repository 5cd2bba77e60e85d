"""`emotriton loadtest`: Locust, headless, against a URL or a local server it starts."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
USER_CLASSES = {"grpc": "GrpcUser", "http": "HttpUser"}


class LoadTestError(RuntimeError):
    """Locust could not run the test."""


@dataclass(frozen=True)
class LoadSummary:
    requests: int
    failures: int
    texts: int
    seconds: float
    requests_per_s: float
    texts_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    def __str__(self) -> str:
        return (
            f"{self.requests} requests ({self.texts} texts) in {self.seconds:.1f} s: "
            f"{self.requests_per_s:.1f} requests/s, {self.texts_per_s:.1f} texts/s; "
            f"latency p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms; {self.failures} failed"
        )


def run_locust(
    url: str,
    protocol: str,
    model: str,
    users: int,
    spawn_rate: float,
    seconds: int,
    batch_size: int,
    corpus: Path | None,
    out: Path,
) -> LoadSummary:
    """Run Locust headless; its CSV and HTML reports go to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    host = url if protocol == "grpc" else f"http://{url}"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), USER_CLASSES[protocol],
        "--headless", "--users", str(users), "--spawn-rate", str(spawn_rate),
        "--run-time", f"{seconds}s", "--host", host, "--stop-timeout", "10",
        "--csv", str(out / "locust"), "--html", str(out / "report.html"), "--only-summary",
        "--model", model, "--batch-size", str(batch_size),
        "--summary-json", str(out / "summary.json"), "--exit-code-on-error", "0",
    ]  # fmt: skip
    if corpus is not None:
        command += ["--corpus", str(corpus)]
    completed = subprocess.run(command, capture_output=True, text=True)
    (out / "locust.log").write_text(completed.stdout + completed.stderr)
    summary = out / "summary.json"
    if completed.returncode != 0 or not summary.exists():
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-20:])
        raise LoadTestError(f"locust failed (exit {completed.returncode}):\n{tail}")
    return LoadSummary(**json.loads(summary.read_text()))
