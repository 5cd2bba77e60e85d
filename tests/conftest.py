"""Shared fixtures: toy models built on the spot, their export, and a real Triton server on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as transformers_logging

from emoclient import Client
from emoexport import toy_models
from emoexport.exporter import ExportOptions, ExportResult, export_classifier
from emoserve import LocalServer

transformers_logging.set_verbosity_error()
transformers_logging.disable_progress_bar()

MAX_LENGTH = 64
EMOTRITON = [sys.executable, "-m", "emotriton"]  # the CLI, as installed
# name in the repository → toy model kind
SERVED = {
    "go_emotions": "roberta-multilabel",
    "emotion": "distilbert-single-label",
    "emotion_bert": "bert-single-label",
}


@dataclass
class ToyModel:
    kind: str
    directory: Path

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Reference: transformers + PyTorch, one text at a time, as a user would run it."""
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


@pytest.fixture(scope="session")
def toy_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ToyModel]:
    root = tmp_path_factory.mktemp("toy-models")
    return {
        name: ToyModel(kind, toy_models.build(kind, root / kind, max_length=MAX_LENGTH))
        for name, kind in SERVED.items()
    }


@pytest.fixture(scope="session")
def repository(
    tmp_path_factory: pytest.TempPathFactory, toy_model_dirs: dict[str, ToyModel]
) -> Path:
    """One repository holding every toy model's ensemble."""
    path = tmp_path_factory.mktemp("model_repository")
    for name, toy in toy_model_dirs.items():
        export_classifier(str(toy.directory), ExportOptions(name=name, repository=path))
    return path


@pytest.fixture(scope="session")
def exported(
    tmp_path_factory: pytest.TempPathFactory, toy_model_dirs: dict[str, ToyModel]
) -> ExportResult:
    """A standalone export whose result the export tests inspect."""
    path = tmp_path_factory.mktemp("single_export")
    return export_classifier(
        str(toy_model_dirs["go_emotions"].directory), ExportOptions(name="go", repository=path)
    )


@pytest.fixture(scope="session")
def server(repository: Path) -> Iterator[LocalServer]:
    with LocalServer(repository) as running:
        yield running


@pytest.fixture(params=["grpc", "http"])
def client(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Client]:
    url = server.endpoints.grpc_url if request.param == "grpc" else server.endpoints.http_url
    with Client(url, protocol=request.param) as connected:
        yield connected
