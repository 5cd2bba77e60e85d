"""Shared fixtures: toy models built on the spot, their export, and a real Triton server on it."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as transformers_logging

from emoclient import Client
from emoexport.exporter import (
    ExportOptions,
    ExportResult,
    export_classifier,
    export_embedding_classifier,
)
from emoexport.head import load_head
from emoexport.labels import GO_EMOTIONS_LABELS
from emoexport.locate import MINILM_L6
from emoexport.recipes import GO_EMOTIONS_CARD_THRESHOLDS
from emoexport.sentence_encoder import load_sentence_encoder
from emoserve import LocalServer
from emotrain import toy_models

transformers_logging.set_verbosity_error()
transformers_logging.disable_progress_bar()

MAX_LENGTH = 64
EMOTRITON = [sys.executable, "-m", "emotriton"]  # the CLI, as installed


@dataclass
class Classifier:
    """A toy sequence classifier and its card's rule; the reference is transformers + PyTorch,
    text by text, as the card's own snippet runs it."""

    directory: Path
    activation: str  # sigmoid or softmax
    card_thresholds: np.ndarray | None  # None: argmax
    max_length: int = MAX_LENGTH
    remote_code: bool = False  # card 002: AutoModel + trust_remote_code, `_, logits = model(...)`
    export_options: dict = field(default_factory=dict)

    def export(self, name: str, repository: Path) -> ExportResult:
        options = ExportOptions(name=name, repository=repository, **self.export_options)
        return export_classifier(str(self.directory), options)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        if self.remote_code:
            model = AutoModel.from_pretrained(self.directory, trust_remote_code=True)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(self.directory)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(self.directory)
        rows = []
        with torch.no_grad():
            for text in texts:
                encoded = tokenizer(
                    text, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                output = model(**encoded)
                logits = (output[1] if self.remote_code else output.logits)[0].double()
                activate = (
                    torch.sigmoid
                    if self.activation == "sigmoid"
                    else partial(torch.softmax, dim=-1)
                )
                rows.append(activate(logits).numpy())
        return np.stack(rows)

    def thresholds(self) -> np.ndarray | None:
        return self.card_thresholds


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
SERVED = [
    "go_emotions",
    "go_emotions_card",
    "emotion",
    "emotion_generic",
    "emotion_bert",
    "semeval",
    "toy_embedding",
    "minilm",
]
REMOTE_CODE = Path(__file__).parent / "remote_code" / "modeling_toy_semeval.py"
GENERIC_LABELS = [f"LABEL_{i}" for i in range(6)]


def build_remote_code_model(directory: Path, first_output: str, num_labels: int = 11) -> Path:
    """A model in the shape of card 002: its own modelling file, named by auto_map, and generic
    LABEL_k names. Truncation at 128 tokens, as the card's snippet does."""
    spec = importlib.util.spec_from_file_location("modeling_toy_semeval", REMOTE_CODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tokenizer = toy_models.bpe_tokenizer(max_length=128)
    labels = [f"LABEL_{i}" for i in range(num_labels)]
    config = toy_models.small_roberta_config(
        tokenizer,
        128,
        labels,
        first_output=first_output,
        auto_map={"AutoModel": "modeling_toy_semeval.ToySemEvalModel"},
    )
    torch.manual_seed(0)
    model = module.ToySemEvalModel(config)
    toy_models.spread_logits(model, tokenizer, logits_of=lambda output: output[1])
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    shutil.copy(REMOTE_CODE, directory)
    return directory


# Fixtures that export models or start a server: a test that uses one is end to end.
E2E_FIXTURES = {"served_models", "repository", "exported", "server", "client"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def served_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ServedModel]:
    """Every model the test server serves, built on the spot (the MiniLM is the real one)."""
    root = tmp_path_factory.mktemp("models")
    roberta = toy_models.build("roberta-multilabel", root / "roberta", max_length=MAX_LENGTH)
    distilbert = toy_models.build(
        "distilbert-single-label", root / "distilbert", max_length=MAX_LENGTH
    )
    generic = toy_models.build(
        "distilbert-single-label", root / "generic", labels=GENERIC_LABELS, max_length=MAX_LENGTH
    )
    bert = toy_models.build("bert-single-label", root / "bert", max_length=MAX_LENGTH)
    toy_encoder = toy_models.build_sentence_encoder(root / "toy-encoder", max_length=MAX_LENGTH)
    card = np.array([GO_EMOTIONS_CARD_THRESHOLDS[label] for label in GO_EMOTIONS_LABELS])
    return {
        "go_emotions": Classifier(roberta, "sigmoid", np.full(28, 0.5)),
        "go_emotions_card": Classifier(
            roberta, "sigmoid", card, export_options={"thresholds": "card"}
        ),
        "emotion": Classifier(distilbert, "softmax", None),
        "emotion_generic": Classifier(generic, "softmax", None),
        "emotion_bert": Classifier(bert, "softmax", None),
        "semeval": Classifier(
            build_remote_code_model(root / "semeval", first_output="similarity"),
            "sigmoid",
            np.full(11, 0.5),
            max_length=128,
            remote_code=True,
            export_options={"trust_remote_code": True},
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
    """A client of the test server, holding its admin key (it lists the served models)."""
    url = server.endpoints.grpc_url if request.param == "grpc" else server.endpoints.http_url
    with Client(url, protocol=request.param, admin_key=server.admin_key) as connected:
        yield connected
