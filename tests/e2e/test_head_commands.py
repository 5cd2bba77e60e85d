"""`emotriton train-head` and `emotriton eval`, end to end on a small go_emotions-format dataset."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emoexport.exporter import ExportOptions, export_embedding_classifier
from emoexport.head import load_head
from emoexport.sentence_encoder import load_sentence_encoder
from emoserve import LocalServer
from emotrain import toy_models
from emotrain.datasets import load_split
from emotrain.metrics import evaluate

from ..support import EMOTRITON
from .datasets import LABELS, with_another_test_split, write_dataset
from .models import MAX_LENGTH


def train_head(encoder: Path, data: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    """`emotriton train-head` with a small, fast head."""
    return subprocess.run(
        [*EMOTRITON, "train-head", "--encoder", str(encoder), "--data", str(data),
         "--out", str(out), "--hidden", "16", "--epochs", "30", "--learning-rate", "1e-2",
         "--cache-dir", str(cache)],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("head-commands")
    encoder = toy_models.build_sentence_encoder(root / "encoder", max_length=MAX_LENGTH)
    data = write_dataset(root / "data")
    head = root / "head"
    run = train_head(encoder, data, head, root / "cache")
    assert run.returncode == 0, run.stderr
    assert "test macro-F1" in run.stdout
    return {"encoder": encoder, "data": data, "head": head, "cache": root / "cache"}


def test_train_head_writes_the_seed_format_and_its_report(trained: dict[str, Path]) -> None:
    head = load_head(str(trained["head"]))
    assert head.labels == LABELS and head.input_name == "logits"
    report = json.loads((trained["head"] / "metrics.json").read_text())
    assert report["validation"]["macro"]["f1"] > 0.5  # the words give the labels away
    assert set(report) >= {"validation", "test", "settings", "encoder", "data"}
    assert (
        "Validation split (the thresholds were tuned here)"
        in (trained["head"] / "metrics.md").read_text()
    )
    assert len(list(trained["cache"].glob("*.npy"))) == 3  # one per split


def test_thresholds_come_from_validation_only(trained: dict[str, Path], tmp_path: Path) -> None:
    """Retraining with a different test split changes no threshold."""
    data = with_another_test_split(trained["data"], tmp_path)
    out = tmp_path / "head"
    assert train_head(trained["encoder"], data, out, trained["cache"]).returncode == 0
    assert json.loads((out / "thresholds.json").read_text()) == json.loads(
        (trained["head"] / "thresholds.json").read_text()
    )


def test_eval_through_the_server_equals_in_process_metrics(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    repository = tmp_path / "repository"
    export_embedding_classifier(
        str(trained["encoder"]),
        str(trained["head"]),
        ExportOptions(name="trained", repository=repository),
    )
    split = load_split(trained["data"], "test")
    head = load_head(str(trained["head"]))
    probabilities = head.positive_probabilities(
        load_sentence_encoder(str(trained["encoder"])).encode(split.texts)
    )
    expected = evaluate(
        split.targets, probabilities >= np.array(head.thresholds), LABELS, head.thresholds
    )

    with LocalServer(repository) as server:
        run = subprocess.run(
            [
                *EMOTRITON,
                "eval",
                "--model",
                "trained",
                "--data",
                str(trained["data"]),
                "--url",
                server.endpoints.grpc_url,
                "--json",
                str(tmp_path / "eval.json"),
                "--markdown",
                str(tmp_path / "eval.md"),
            ],
            capture_output=True,
            text=True,
        )
    assert run.returncode == 0, run.stderr
    assert "| macro |" in run.stdout and "Exact match" in run.stdout
    served = json.loads((tmp_path / "eval.json").read_text())
    assert served == json.loads(json.dumps(expected.to_dict()))
    assert (tmp_path / "eval.md").read_text().startswith("### trained on data/test.tsv")
