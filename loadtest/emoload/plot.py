"""Throughput and latency against users, one point per step of a load test."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure  # a Figure of its own: no pyplot state, no GUI backend

from .summary import LoadSummary


def plot_steps(steps: Sequence[LoadSummary], path: Path, title: str) -> Path:
    """Write a PNG of requests/s and texts/s, and of p50/p95/p99, against users."""
    measured = sorted((step for step in steps if step.p50_ms is not None), key=lambda s: s.users)
    users = [step.users for step in measured]
    figure = Figure(figsize=(10, 4))
    throughput, latency = figure.subplots(1, 2)
    throughput.plot(users, [s.texts_per_s for s in measured], "o-", label="texts/s")
    throughput.plot(users, [s.requests_per_s for s in measured], "s--", label="requests/s")
    throughput.set(xscale="log", xlabel="concurrent users", ylabel="per second", title="Throughput")
    for name, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
        values = [getattr(step, f"{name}_ms") for step in measured]
        latency.plot(users, values, style, label=name)
    latency.set(
        xscale="log", yscale="log", xlabel="concurrent users", ylabel="ms", title="Request latency"
    )
    for axes in (throughput, latency):
        axes.set_xticks(users, [str(u) for u in users])
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
