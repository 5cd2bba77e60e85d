"""The exported pipeline run in this process, as the server runs it: the tokenizer model's
code, the encoder (and head) in onnxruntime, and the postprocess model's decision. The
quality gate classifies labelled texts with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from .head import Head
from .labels import LabelScheme
from .triton_models import postprocess
from .triton_models import tokenizer as tokenizer_model


@dataclass
class InProcessPipeline:
    tokenizer: Tokenizer  # as tokenizer_model.load_tokenizer configures it
    input_names: Sequence[str]
    encoder_path: Path
    scheme: LabelScheme
    head: Head | None = None  # sentence encoders: the head over the embedding
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.session = ort.InferenceSession(
            str(self.encoder_path), providers=["CPUExecutionProvider"]
        )

    def _scores(self, texts: list[str]) -> np.ndarray:
        inputs = tokenizer_model.encode(self.tokenizer, texts, list(self.input_names))
        (output,) = self.session.run(None, inputs)
        if self.head is not None:
            output = self.head.positive_probabilities(output)
        return postprocess.ACTIVATIONS[self.scheme.activation](output)

    def classify(self, texts: list[str]) -> np.ndarray:
        """bool [len(texts), labels]: the decisions the served ensemble would return."""
        thresholds = None if self.scheme.thresholds is None else np.array(self.scheme.thresholds)
        rows = [
            postprocess.decide(
                self._scores(texts[start : start + self.batch_size]),
                self.scheme.decision,
                thresholds,
            )
            for start in range(0, len(texts), self.batch_size)
        ]
        labels = len(self.scheme.labels)
        return np.concatenate(rows) if rows else np.zeros((0, labels), dtype=bool)
