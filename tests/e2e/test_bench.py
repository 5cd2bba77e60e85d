"""`emotriton bench` on a toy model, with tiny settings: every contender runs, reports written."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

from emoload.bench import JSON_API, REFERENCE
from emoload.repeats import replay
from emoload.served import CacheCounts

from ..support import EMOTRITON


def test_bench_runs_every_contender_on_the_same_texts(
    exported, served_models, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    # A copy: the server's python stubs write bytecode beside each model.py they load, and the
    # export tests inspect the original's layout.
    repository = shutil.copytree(exported.models[0].parent, tmp_path / "repository")
    run = subprocess.run(
        [*EMOTRITON, "bench", "--model", "go", "--repository", str(repository),
         "--source", str(served_models["go_emotions"].directory), "--texts", "24",
         "--concurrency", "1", "32", "--batch-size", "8", "--out", str(out),
         "--perf-analyzer", str(tmp_path / "no-perf-analyzer")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / "bench.json").read_text())
    contenders = [r["contender"] for r in report["runs"]]
    assert contenders == [
        "served, 1 clients x 1 text",
        REFERENCE,
        "served, 4 clients x 8 texts",
        f"{JSON_API}, 1 clients x 1 text",
        f"{JSON_API}, 32 clients x 1 text",
        "in-process onnxruntime, 1 text",
        "in-process onnxruntime, batches of 8",
        "transformers pipeline (batch 8)",
    ]
    assert all(r["texts"] == 24 and r["texts_per_s"] > 0 for r in report["runs"])
    # The JSON API beside the SDK at each load, on the same texts.
    besides = report["json_api"]
    assert [b["json_api"]["contender"] for b in besides] == contenders[3:5]
    assert [b["sdk"]["contender"] for b in besides] == [
        "SDK beside the JSON API, 1 clients x 1 text",
        "SDK beside the JSON API, 32 clients x 1 text",
    ]
    for beside in besides:
        assert beside["sdk"]["texts"] == beside["json_api"]["texts"] == 24
        assert beside["texts_per_s_ratio"] > 0 and beside["p50_ms_more"] is not None
    assert report["skipped"] == {  # a classifier: infinity-emb serves encoders only
        "perf_analyzer": f"no file {tmp_path / 'no-perf-analyzer'}",
        "infinity_emb": "it serves embeddings: it needs an encoder + head model",
    }
    assert next(r for r in report["runs"] if r["contender"] == REFERENCE)["ratio"] == 1.0
    stats = report["triton"][REFERENCE]
    assert [s["model"] for s in stats] == ["go_tokenizer", "go_encoder", "go_postprocess"]
    assert all(s["texts"] == 24 and 1 <= s["average_batch"] <= 24 for s in stats)
    assert "| in-process onnxruntime, 1 text |" in (out / "bench.md").read_text()
    if importlib.util.find_spec("matplotlib") is not None:  # the loadtest extra brings it
        assert (out / "bench.png").read_bytes().startswith(b"\x89PNG")


def test_bench_mix_runs_interactive_clients_beside_a_bulk_call(exported, tmp_path: Path) -> None:
    out = tmp_path / "mix"
    repository = shutil.copytree(exported.models[0].parent, tmp_path / "repository")
    corpus = tmp_path / "texts.txt"
    corpus.write_text("".join(f"text number {i} of the mix\n" for i in range(1000)))
    run = subprocess.run(
        [*EMOTRITON, "bench", "--mix", "--model", "go", "--repository", str(repository),
         "--data", str(corpus), "--bulk-texts", "300", "--interactive-clients", "2",
         "--interactive-rate", "20", "--interactive-seconds", "2", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / "mix.json").read_text())
    alone, bulk, mixed = report["phases"]
    assert [alone["name"], bulk["name"], mixed["name"]] == [
        "interactive alone",
        "bulk alone",
        "mixed",
    ]
    for phase in (alone, mixed):
        assert phase["interactive_requests"] > 0 and phase["interactive_failures"] == {}
    for phase in (bulk, mixed):
        assert phase["bulk_texts"] == 300 and phase["bulk_error"] is None
    assert all(phase["cache_hit_rate"] is None for phase in report["phases"])  # no cache
    assert "| mixed |" in (out / "mix.md").read_text()


def test_bench_repeats_measures_the_replay_with_and_without_the_cache(
    exported, tmp_path: Path
) -> None:
    out = tmp_path / "repeats"
    repository = shutil.copytree(exported.models[0].parent, tmp_path / "repository")
    # As a re-export installs it: Triton 2.51 counts an ensemble's cache hits in /metrics only
    # at version 1 (emoload.served.CacheCounts), so the report must not read them there.
    (repository / "go" / "1").rename(repository / "go" / "2")
    corpus = tmp_path / "texts.txt"
    texts = [f"text number {i} of the replay" for i in range(400)]
    corpus.write_text("".join(text + "\n" for text in texts))
    replayed = replay(texts[200:], 0.5)
    repeats = (len(replayed) - len(set(replayed))) / len(replayed)
    run = subprocess.run(
        [*EMOTRITON, "bench", "--repeats", "--model", "go", "--repository", str(repository),
         "--data", str(corpus), "--texts", "400", "--clients", "4", "--repeat-share", "0.5",
         "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((out / "repeats.json").read_text())
    caches = {
        (run["cache_mib"] > 0, run["workload"]): CacheCounts(**run["cache"])
        for run in report["runs"]
    }
    assert caches[(False, "no repeats")].hit_rate is None  # no cache, nothing looked up
    assert caches[(False, "50% repeats")].hit_rate is None
    assert caches[(True, "no repeats")].hit_rate == 0.0
    # Each repeat is a hit, but one sent while its first sending is still in flight.
    assert repeats - 0.1 < caches[(True, "50% repeats")].hit_rate <= repeats
    assert set(report["ratios"]) == {"no repeats", "50% repeats"}
    # What the cache costs, from Triton's statistics: the time of its lookups.
    assert caches[(True, "no repeats")].us_per_lookup > 0
    assert caches[(True, "50% repeats")].us_per_lookup > 0
