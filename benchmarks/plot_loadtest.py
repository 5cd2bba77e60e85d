"""Plot a series of `emotriton loadtest` runs: throughput and latency against users.

python benchmarks/plot_loadtest.py build/loadtest/users-* --out docs/loadtest.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="loadtest output folders")
    parser.add_argument("--out", type=Path, default=Path("docs/loadtest.png"))
    parser.add_argument("--title", default="default model, gRPC, 2-core CPU")
    args = parser.parse_args()

    rows = []
    for run in args.runs:
        summary = json.loads((run / "summary.json").read_text())
        users = int(run.name.rsplit("-", 1)[-1])
        rows.append((users, summary))
    rows.sort(key=lambda row: row[0])
    users = [u for u, _ in rows]

    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(10, 4))
    throughput.plot(users, [s["texts_per_s"] for _, s in rows], "o-", label="texts/s")
    throughput.plot(users, [s["requests_per_s"] for _, s in rows], "s--", label="requests/s")
    throughput.set(xscale="log", xlabel="concurrent users", ylabel="per second", title="Throughput")
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
        latency.plot(users, [s[key] for _, s in rows], style, label=key.split("_")[0])
    latency.set(
        xscale="log", yscale="log", xlabel="concurrent users", ylabel="ms", title="Request latency"
    )
    for axes in (throughput, latency):
        axes.set_xticks(users, [str(u) for u in users])
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(args.title)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
