"""Shared fixtures: toy models built on the spot, their export, and a real Triton server on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as transformers_logging

from emoclient import Client
from emoexport import toy_models
from emoexport.exporter import (
    ExportOptions,
    ExportResult,
    export_classifier,
    export_embedding_classifier,
)
from emoexport.head import load_head
from emoexport.sentence_encoder import MINILM_L6, load_sentence_encoder
from emoserve import LocalServer

transformers_logging.set_verbosity_error()
transformers_logging.disable_progress_bar()

MAX_LENGTH = 64
EMOTRITON = [sys.executable, "-m", "emotriton"]  # the CLI, as installed


@dataclass
class Classifier:
    """A toy sequence classifier; its reference is transformers + PyTorch, text by text."""

    kind: str
    directory: Path

    def export(self, name: str, repository: Path) -> ExportResult:
        return export_classifier(
            str(self.directory), ExportOptions(name=name, repository=repository)
        )

    def probabilities(self, texts: list[str]) -> np.ndarray:
        model = AutoModelForSequenceClassification.from_pretrained(self.directory).eval()
        tokenizer = AutoTokenizer.from_pretrained(self.directory)
        multi_label = model.config.problem_type == "multi_label_classification"
        rows = []
        with torch.no_grad():
            for text in texts:
                encoded = tokenizer(
                    text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
                )
                logits = model(**encoded).logits[0].double()
                rows.append(
                    (torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).numpy()
                )
        return np.stack(rows)

    def thresholds(self) -> np.ndarray | None:
        """The card's rule: 0.5 per label for multi-label models, argmax (None) otherwise."""
        config = AutoConfig.from_pretrained(self.directory)
        multi_label = config.problem_type == "multi_label_classification"
        return np.full(config.num_labels, 0.5) if multi_label else None


@dataclass
class EmbeddingClassifier:
    """A sentence encoder with an ONNX head; its reference is sentence-transformers' encode and
    the head in onnxruntime, in-process."""

    encoder: str
    head: Path

    def export(self, name: str, repository: Path) -> ExportResult:
        return export_embedding_classifier(
            self.encoder, str(self.head), ExportOptions(name=name, repository=repository)
        )

    def probabilities(self, texts: list[str]) -> np.ndarray:
        embeddings = load_sentence_encoder(self.encoder).encode(texts)
        return load_head(str(self.head)).positive_probabilities(embeddings)

    def thresholds(self) -> np.ndarray:
        return np.array(load_head(str(self.head)).thresholds)


ServedModel = Classifier | EmbeddingClassifier
SERVED = ["go_emotions", "emotion", "emotion_bert", "toy_embedding", "minilm"]


@pytest.fixture(scope="session")
def served_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ServedModel]:
    """Every model the test server serves, built on the spot (the MiniLM is the real one)."""
    root = tmp_path_factory.mktemp("models")
    toy_encoder = toy_models.build_sentence_encoder(root / "toy-encoder", max_length=MAX_LENGTH)
    return {
        "go_emotions": Classifier(
            "roberta-multilabel",
            toy_models.build("roberta-multilabel", root / "roberta", max_length=MAX_LENGTH),
        ),
        "emotion": Classifier(
            "distilbert-single-label",
            toy_models.build("distilbert-single-label", root / "distilbert", max_length=MAX_LENGTH),
        ),
        "emotion_bert": Classifier(
            "bert-single-label",
            toy_models.build("bert-single-label", root / "bert", max_length=MAX_LENGTH),
        ),
        "toy_embedding": EmbeddingClassifier(
            str(toy_encoder), toy_models.build_head(root / "toy-head", dim=32)
        ),
        "minilm": EmbeddingClassifier(
            MINILM_L6, toy_models.build_head(root / "minilm-head", dim=384, seed=1)
        ),
    }


@pytest.fixture(scope="session")
def repository(
    tmp_path_factory: pytest.TempPathFactory, served_models: dict[str, ServedModel]
) -> Path:
    """One repository holding every model's ensemble."""
    path = tmp_path_factory.mktemp("model_repository")
    for name, model in served_models.items():
        model.export(name, path)
    return path


@pytest.fixture(scope="session")
def exported(
    tmp_path_factory: pytest.TempPathFactory, served_models: dict[str, ServedModel]
) -> ExportResult:
    """A standalone export of the toy RoBERTa, whose result the export tests inspect."""
    return served_models["go_emotions"].export("go", tmp_path_factory.mktemp("single_export"))


@pytest.fixture(scope="session")
def server(repository: Path) -> Iterator[LocalServer]:
    with LocalServer(repository) as running:
        yield running


@pytest.fixture(params=["grpc", "http"])
def client(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Client]:
    url = server.endpoints.grpc_url if request.param == "grpc" else server.endpoints.http_url
    with Client(url, protocol=request.param) as connected:
        yield connected
