"""The end-to-end layer's fixtures: toy models built on the spot, their export, and real Triton
servers on it. Every test under tests/e2e is marked `e2e`, so `pytest -m "not e2e"` runs the
unit layer alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from transformers.utils import logging as transformers_logging

from emoapi.process import ApiProcess
from emoclient import Client
from emoexport.exporter import ExportOptions, ExportResult, export_classifier
from emoexport.labels import GO_EMOTIONS_LABELS
from emoexport.locate import MINILM_L6
from emoexport.recipes import GO_EMOTIONS_CARD_THRESHOLDS
from emoserve import LocalServer, Tracing
from emoserve.config import free_port
from emotrain import toy_models

from .collector import Collector
from .models import (
    GENERIC_LABELS,
    MAX_LENGTH,
    Classifier,
    EmbeddingClassifier,
    ServedModel,
    build_remote_code_model,
)
from .traffic import KEY, MODEL

transformers_logging.set_verbosity_error()
transformers_logging.disable_progress_bar()

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
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
def trace_collector() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.stop()


@pytest.fixture(scope="session")
def tracing(trace_collector: Collector) -> Tracing:
    """The session server's and JSON API's: spans of the requests that carry a sampled context,
    and of no other."""
    return Tracing(trace_collector.url, rate=0)


@pytest.fixture(scope="session")
def server(repository: Path, tracing: Tracing) -> Iterator[LocalServer]:
    with LocalServer(repository, tracing=tracing) as running:
        yield running


# The models the JSON API serves in front of the session's server: the first is its default.
API_MODELS = ("go_emotions", "emotion")


@pytest.fixture(scope="session")
def json_api(server: LocalServer, tracing: Tracing) -> Iterator[str]:
    """`emotriton api` in front of the test server: its base URL."""
    url = server.endpoints.grpc_url
    with ApiProcess(url, "127.0.0.1", free_port(), API_MODELS, tracing) as api:
        yield api.url


@pytest.fixture(params=["grpc", "http"])
def client(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Client]:
    """A client of the test server, holding its admin key (it lists the served models)."""
    url = server.endpoints.grpc_url if request.param == "grpc" else server.endpoints.http_url
    with Client(url, protocol=request.param, admin_key=server.admin_key) as connected:
        yield connected


# The fault tests' server: one toy ensemble (tokenizer, encoder, postprocess), three backend
# processes, which they kill, crash and overload.


@pytest.fixture(scope="session")
def toy_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One toy ensemble, `MODEL` (tests that change it change a copy)."""
    root = tmp_path_factory.mktemp("reliability")
    model = toy_models.build("roberta-multilabel", root / "roberta", max_length=MAX_LENGTH)
    export_classifier(str(model), ExportOptions(name=MODEL, repository=root / "repository"))
    return root / "repository"


@pytest.fixture(scope="module")
def toy_server(toy_repository: Path) -> Iterator[LocalServer]:
    """A server of its own for each module that faults it, with the admin key `KEY`."""
    with LocalServer(toy_repository, admin_key=KEY) as running:
        yield running
