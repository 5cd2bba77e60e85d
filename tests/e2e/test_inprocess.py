"""The in-process runner of an exported repository, and the exported encoder's ragged batches."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from emoexport import ragged
from emoexport.inprocess import ExportedEnsemble

TEXTS = ["Thank you so much!", "", "I am not having a great day, and it rains.", "ok"]


@pytest.fixture(scope="module")
def runner(exported) -> ExportedEnsemble:
    return ExportedEnsemble(exported.models[-1].parent, "go")


def test_runner_matches_pytorch_and_publishes_every_tensor(
    runner: ExportedEnsemble, served_models
) -> None:
    tensors = runner.run(TEXTS)
    assert {"TEXT", "input_ids", "attention_mask", "logits", "SCORES", "PREDICTED"} <= set(tensors)
    scores, predicted = runner.classify(TEXTS)
    np.testing.assert_allclose(scores, served_models["go_emotions"].probabilities(TEXTS), atol=1e-4)
    np.testing.assert_array_equal(predicted, scores >= 0.5)


def test_a_request_of_several_texts_equals_each_text_alone(runner: ExportedEnsemble) -> None:
    together, _ = runner.classify(TEXTS)
    alone = np.concatenate([runner.classify([text])[0] for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_an_id_outside_the_embedding_table_cannot_break_the_batch(exported) -> None:
    """Only a direct call to the encoder can send one; it is read as the padding id."""
    session = ort.InferenceSession(str(exported.models[1] / "1" / "model.onnx"))
    good = {"input_ids": np.array([[0, 40, 41, 2]]), "attention_mask": np.ones((1, 4), int)}
    hostile = {"input_ids": np.array([[0, 10**9, -3, 2]]), "attention_mask": np.ones((1, 4), int)}
    merged = {
        name: np.concatenate([ragged.flatten(good)[name], ragged.flatten(hostile)[name]])
        for name in ragged.flatten(good)
    }
    (logits,) = session.run(["logits"], merged)
    (alone,) = session.run(["logits"], ragged.flatten(good))
    np.testing.assert_allclose(logits[:1], alone, atol=1e-5)
    assert np.isfinite(logits).all()


def test_exported_encoder_gives_the_same_logits_ragged_and_padded(exported, served_models) -> None:
    """The merged ragged batch of texts of different lengths equals PyTorch on the padded one."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = served_models["go_emotions"].directory
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    encoded = [tokenizer(text)["input_ids"] for text in TEXTS]
    session = ort.InferenceSession(str(exported.models[1] / "1" / "model.onnx"))
    (logits,) = session.run(
        None,
        {
            "input_ids": np.concatenate(encoded).astype(np.int64),
            "attention_mask": np.ones(sum(map(len, encoded)), dtype=np.int64),
            ragged.TEXT_LENGTHS: np.array([[len(e)] for e in encoded], dtype=np.int32),
        },
    )
    padded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**padded).logits.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
