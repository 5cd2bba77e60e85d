"""`emotriton finetune` on a tiny encoder and a few hundred texts: both label kinds, the written
directory, and choices made on validation only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from emoexport.labels import EMOTION_LABELS
from emotrain import toy_models
from emotrain.datasets import load_split
from emotrain.finetune import (
    MULTI_LABEL,
    SINGLE_LABEL,
    make_mean_pooling_layer,
    mean_pooling_config,
)

from ..support import EMOTRITON
from .datasets import LABELS, with_another_test_split, write_dataset
from .models import MAX_LENGTH

# Rates for a random tiny encoder; the defaults suit a pre-trained one.
FAST = ["--epochs", "3", "--encoder-learning-rate", "3e-3", "--head-learning-rate", "1e-2"]


def write_emotion_dataset(directory: Path, seed: int = 0) -> Path:
    """dair-ai emotion's layout: `text;label` rows, one label per text."""
    rng = np.random.default_rng(seed)
    words = {"joy": "happy glad wonderful", "anger": "furious angry hate", "fear": "scared afraid"}
    directory.mkdir(parents=True)
    for split, rows in (("train", 300), ("validation", 80), ("test", 80)):
        lines = []
        for row in range(rows):
            label = rng.choice(sorted(words))
            text = " ".join(rng.choice(words[label].split()) for _ in range(3))
            lines.append(f"{text} {row};{label}")
        (directory / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return directory


def finetune(base: Path, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EMOTRITON, "finetune", "--base", str(base), "--data", str(data), "--out", str(out),
         "--threads", "1", *FAST, *extra],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finetune")
    return toy_models.build_sentence_encoder(root / "encoder", max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def multi_label(encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multi-label")
    data, out = write_dataset(root / "data"), root / "model"
    run = finetune(encoder, data, out)
    assert run.returncode == 0, run.stderr
    assert "test macro-F1" in run.stdout
    return {"data": data, "out": out}


def scores(directory: Path, texts: list[str], activation) -> np.ndarray:
    """The written directory, as anyone loads it."""
    model = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    with torch.no_grad():
        logits = model.eval()(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    return activation(logits).numpy()


def test_multi_label_writes_a_classifier_with_tuned_thresholds(multi_label) -> None:
    out = multi_label["out"]
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == MULTI_LABEL
    assert [config["id2label"][str(i)] for i in range(3)] == list(LABELS)
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["dtype"] == "float16"
    thresholds = json.loads((out / "thresholds.json").read_text())
    assert list(thresholds) == list(LABELS)

    report = json.loads((out / "metrics.json").read_text())
    history = [e["validation_macro_f1"] for e in report["epochs"]]
    assert len(history) == 3 and report["chosen_epoch"] == 1 + int(np.argmax(history))
    assert report["validation"]["macro"]["f1"] > 0.7  # the words give the labels away
    assert report["test"]["macro"]["f1"] > 0.7
    assert [m["threshold"] for m in report["validation"]["per_label"]] == list(thresholds.values())
    assert "Thresholds were tuned" in (out / "metrics.md").read_text()

    # The reported test figures are the written model's, decided by its thresholds.
    split = load_split(multi_label["data"], "test")
    decided = scores(out, split.texts, torch.sigmoid) >= np.array(list(thresholds.values()))
    tp = (decided & split.targets).sum(axis=0)
    f1 = 2 * tp / (decided.sum(axis=0) + split.targets.sum(axis=0))
    assert f1.mean() == pytest.approx(report["test"]["macro"]["f1"], abs=1e-6)


def test_choices_come_from_validation_only(multi_label, encoder: Path, tmp_path: Path) -> None:
    """Same seed, another test split: the same epoch, thresholds and weights."""
    data = with_another_test_split(multi_label["data"], tmp_path)
    out = tmp_path / "model"
    assert finetune(encoder, data, out).returncode == 0
    first, second = (
        json.loads((d / "metrics.json").read_text()) for d in (multi_label["out"], out)
    )
    assert [(e["train_loss"], e["validation_macro_f1"]) for e in first["epochs"]] == [
        (e["train_loss"], e["validation_macro_f1"]) for e in second["epochs"]
    ]
    assert (out / "thresholds.json").read_text() == (
        multi_label["out"] / "thresholds.json"
    ).read_text()
    assert (out / "model.safetensors").read_bytes() == (
        multi_label["out"] / "model.safetensors"
    ).read_bytes()


def test_single_label_decides_by_argmax(encoder: Path, tmp_path: Path) -> None:
    data, out = write_emotion_dataset(tmp_path / "data"), tmp_path / "model"
    run = finetune(encoder, data, out, "--full-precision")
    assert run.returncode == 0, run.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == SINGLE_LABEL and config["dtype"] == "float32"
    assert tuple(config["id2label"][str(i)] for i in range(6)) == EMOTION_LABELS
    assert not (out / "thresholds.json").exists()
    report = json.loads((out / "metrics.json").read_text())
    assert report["test"]["exact_match"] > 0.9  # accuracy: one label per text
    assert {m["threshold"] for m in report["test"]["per_label"]} == {None}
    assert "| sadness |" in (out / "metrics.md").read_text()
    split = load_split(data, "test")
    predicted = scores(out, split.texts, lambda x: torch.softmax(x, -1)).argmax(axis=1)
    accuracy = float((predicted == split.targets.argmax(axis=1)).mean())
    assert accuracy == pytest.approx(report["test"]["exact_match"], abs=1e-9)


def test_the_added_layer_mean_pools_the_encoder(encoder: Path) -> None:
    """At the start, the classifier's [CLS] state is the sentence embedding the encoder was
    trained for (mean pooling over the attention mask), centred and rescaled; padding in a
    batch changes nothing."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoConfig

    texts = ["happy glad", "the meeting is furious and angry, I hate the meeting"]
    config = mean_pooling_config(AutoConfig.from_pretrained(encoder, num_labels=3), "mean")
    model = AutoModelForSequenceClassification.from_pretrained(encoder, config=config).eval()
    make_mean_pooling_layer(model)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    with torch.no_grad():
        batch = model.bert(**tokenizer(texts, padding=True, return_tensors="pt"))
        alone = model.bert(**tokenizer(texts[:1], return_tensors="pt"))
    pooled = batch.last_hidden_state[:, 0]
    embeddings = torch.from_numpy(SentenceTransformer(str(encoder), device="cpu").encode(texts))
    centred = embeddings - embeddings.mean(dim=1, keepdim=True)
    assert torch.nn.functional.cosine_similarity(pooled, centred).min() > 0.999
    assert torch.allclose(pooled[0], alone.last_hidden_state[0, 0], atol=1e-5)
