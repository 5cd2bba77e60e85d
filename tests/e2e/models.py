"""The models the end-to-end tests serve, with their references: a toy sequence classifier as
transformers + PyTorch run it, an encoder + head as sentence-transformers and onnxruntime run
them, and a model in the shape of card 002 that ships its own modelling code."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from emoexport.exporter import (
    ExportOptions,
    ExportResult,
    export_classifier,
    export_embedding_classifier,
)
from emoexport.head import load_head
from emoexport.sentence_encoder import load_sentence_encoder
from emotrain import toy_models

MAX_LENGTH = 64
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
