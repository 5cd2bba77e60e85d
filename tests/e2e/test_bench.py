"""`emotriton bench` on a toy model, with tiny settings: every contender runs, reports written."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

from emoload.bench import REFERENCE

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
        "in-process onnxruntime, 1 text",
        "in-process onnxruntime, batches of 8",
        "transformers pipeline (batch 8)",
    ]
    assert all(r["texts"] == 24 and r["texts_per_s"] > 0 for r in report["runs"])
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
