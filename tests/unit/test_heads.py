"""The metrics table and the dataset readers, without torch (tests/e2e/test_heads.py trains and
writes heads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef, precision_recall_fscore_support

from emotrain.datasets import DatasetError, load_split
from emotrain.metrics import evaluate

from ..support import DATA, needs_data


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    targets = rng.random((500, 5)) < [0.5, 0.2, 0.05, 0.01, 0.0]
    predicted = rng.random((500, 5)) < 0.3
    report = evaluate(targets, predicted, list("abcde"), [0.5] * 5)
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predicted, zero_division=0
    )
    for i, label in enumerate(report.per_label):
        assert label.precision == pytest.approx(precision[i])
        assert label.recall == pytest.approx(recall[i])
        assert label.f1 == pytest.approx(f1[i])
        assert label.support == support[i]
        assert label.mcc == pytest.approx(matthews_corrcoef(targets[:, i], predicted[:, i]))
        assert label.accuracy == pytest.approx((targets[:, i] == predicted[:, i]).mean())
    assert report.macro.f1 == pytest.approx(
        f1_score(targets, predicted, average="macro", zero_division=0)
    )
    assert report.weighted.f1 == pytest.approx(
        f1_score(targets, predicted, average="weighted", zero_division=0)
    )
    assert report.exact_match == pytest.approx((targets == predicted).all(axis=1).mean())
    assert "| macro |" in report.to_markdown() and json.dumps(report.to_dict())


@needs_data
def test_go_emotions_splits_read_as_documented() -> None:
    dev = load_split(DATA / "go_emotions", "validation")
    assert len(dev.texts) == 5426 and len(dev.labels) == 28 and dev.labels[-1] == "neutral"
    assert int((dev.targets.sum(axis=1) > 1).sum()) == 878  # multi-label rows, per the data README
    assert dev.targets.any(axis=1).all()
    assert len(load_split(DATA / "go_emotions", "test").texts) == 5427


@needs_data
def test_emotion_splits_read_as_documented() -> None:
    validation = load_split(DATA / "emotion", "dev")
    assert len(validation.texts) == 2000
    assert (validation.targets.sum(axis=1) == 1).all()
    counts = dict(zip(validation.labels, validation.targets.sum(axis=0).tolist()))
    assert counts == {
        "sadness": 550,
        "joy": 704,
        "love": 178,
        "anger": 275,
        "fear": 212,
        "surprise": 81,
    }


def test_unknown_split_and_unreadable_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown split"):
        load_split(tmp_path, "holdout")
    with pytest.raises(DatasetError, match="neither go_emotions"):
        load_split(tmp_path, "test")
