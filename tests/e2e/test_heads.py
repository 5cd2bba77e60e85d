"""Heads in seed 001's format: their training, their thresholds, and the heads refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.metrics import f1_score

from emoexport.errors import SourceError
from emoexport.head import POSITIVE_SCORES, load_head
from emotrain import toy_models
from emotrain.head_training import HeadNet, HeadSettings, train, tune_thresholds, write_head


def test_thresholds_maximise_f1_per_label() -> None:
    rng = np.random.default_rng(1)
    targets = rng.random((400, 3)) < 0.3
    probabilities = np.clip(targets * 0.3 + rng.random((400, 3)) * 0.7, 0, 1)
    chosen = tune_thresholds(probabilities, targets)
    for label in range(3):

        def f1_at(t: float, label: int = label) -> float:
            return f1_score(targets[:, label], probabilities[:, label] >= t, zero_division=0)

        best = max(f1_at(t) for t in np.round(np.arange(0.01, 1.0, 0.01), 2))
        assert f1_at(chosen[label]) == pytest.approx(best)


def test_trained_head_learns_and_is_written_in_the_seed_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    y = np.stack([x[:, 0] > 0.5, x[:, 1] + x[:, 2] > 0], axis=1)
    net = train(
        x[:500],
        y[:500],
        x[500:],
        y[500:],
        HeadSettings(hidden=16, epochs=100, batch_size=32, learning_rate=1e-2, patience=10),
    )
    assert ((net.probabilities(x[500:]) >= 0.5) == y[500:]).mean() > 0.9
    write_head(net, ("joy", "anger"), np.array([0.3, 0.6]), tmp_path)
    head = load_head(str(tmp_path))
    assert head.labels == ("joy", "anger") and head.thresholds == (0.3, 0.6)
    assert head.input_name == "logits"
    np.testing.assert_allclose(head.positive_probabilities(x), net.probabilities(x), atol=1e-6)
    served = ort.InferenceSession(head.served_model().SerializeToString())
    (output,) = served.get_outputs()
    assert output.name == POSITIVE_SCORES and output.shape[1] == 2
    (scores,) = served.run(None, {"logits": x})
    np.testing.assert_array_equal(scores, head.positive_probabilities(x))


def test_a_head_whose_thresholds_do_not_match_its_outputs_is_refused(tmp_path: Path) -> None:
    toy_models.build_head(tmp_path, dim=4, labels=("joy", "anger"))
    (tmp_path / "thresholds.json").write_text(json.dumps({"joy": 0.5, "fear": 0.5}))
    with pytest.raises(SourceError, match=r"missing \['anger'\], unknown \['fear'\]"):
        load_head(str(tmp_path))


def test_head_network_shapes() -> None:
    assert HeadNet(384, 28, HeadSettings(hidden=0))(np_tensor(2, 384)).shape == (2, 28)
    assert HeadNet(384, 28, HeadSettings(hidden=64))(np_tensor(3, 384)).shape == (3, 28)


def np_tensor(*shape: int) -> torch.Tensor:
    return torch.zeros(*shape)
