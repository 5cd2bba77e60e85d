"""The committed default model, end to end: exported through the classifier recipe with its
validation-tuned thresholds, served by Triton, answering as PyTorch does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from emoclient import Client
from emoexport.exporter import ExportOptions, export_classifier
from emoserve import LocalServer
from emotrain.finetune import MULTI_LABEL, score_texts

from ..support import ROOT

MODEL = ROOT / "models" / "go_emotions-minilm-l6"
TEXTS = [
    "Thank you so much!",
    "I am not having a great day.",
    "I miss my grandmother every single day.",
    "Haha that's hilarious, I can't stop laughing.",
]


def test_the_committed_classifier_serves_its_own_decisions(tmp_path: Path) -> None:
    thresholds = json.loads((MODEL / "thresholds.json").read_text())
    options = ExportOptions(
        name="default", repository=tmp_path, thresholds=str(MODEL / "thresholds.json")
    )
    result = export_classifier(str(MODEL), options)
    assert result.scheme.activation == "sigmoid" and result.scheme.decision == "threshold"
    assert len(result.models) == 4  # ensemble, tokenizer, encoder, postprocess

    model = AutoModelForSequenceClassification.from_pretrained(MODEL, dtype=torch.float32)
    assert model.config.problem_type == MULTI_LABEL
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    assert result.scheme.thresholds == tuple(thresholds[label] for label in labels)
    expected = score_texts(model, AutoTokenizer.from_pretrained(MODEL), TEXTS, MULTI_LABEL)

    with LocalServer(tmp_path) as server, Client(server.endpoints.grpc_url) as client:
        served = client.classify(TEXTS, model="default")
    scores = np.array([[r.scores[label] for label in labels] for r in served])
    assert np.abs(scores - expected).max() <= 1e-4
    for row, result in zip(expected, served):
        chosen = {label for label, p in zip(labels, row) if p >= thresholds[label]}
        assert set(result.labels) == chosen
    firsts = [r.labels[0] if r.labels else None for r in served]
    assert firsts[0] == "gratitude"
    assert firsts[1] != "disapproval"
    assert firsts[3] == "amusement"
