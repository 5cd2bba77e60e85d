"""The peers `emotriton bench` drives, when one is missing: skipped, with why (infinity-emb's
check imports the sentence encoder, and torch with it, before it looks at the options)."""

from __future__ import annotations

from pathlib import Path

from emoload import bench
from emoload.bench import BenchOptions, BenchReport


def test_a_missing_peer_is_reported_as_skipped_with_why(tmp_path: Path) -> None:
    options = BenchOptions(
        model="m", url="localhost:1", metrics_url="http://localhost:1/metrics",
        repository=tmp_path, models=["m_encoder"], texts=["a"],
        perf_analyzer=tmp_path / "missing",
    )  # fmt: skip
    report = BenchReport("m", "machine", 1)
    bench._peer("perf_analyzer", lambda: bench._perf_analyzer(options, report), report)
    bench._peer("infinity_emb", lambda: bench._infinity(options, report), report)
    assert report.runs == []
    assert report.skipped == {
        "perf_analyzer": f"no file {tmp_path / 'missing'}",
        "infinity_emb": "it serves embeddings: it needs an encoder + head model",
    }
    assert report.to_json()["skipped"] == report.skipped
    assert f"- perf_analyzer: skipped, no file {tmp_path / 'missing'}" in report.markdown()
