"""How a model's logits become served decisions: label names, activation, decision rule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from emoclient import protocol

from .errors import LabelSchemeError

Activation = Literal["sigmoid", "softmax", "none"]  # none: the model outputs probabilities
Decision = Literal["threshold", "argmax"]

# The label sets of the datasets the seed cards were trained on, in their datasets' id order.
GO_EMOTIONS_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride",
    "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip
SEMEVAL_LABELS = (
    "anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism", "sadness",
    "surprise", "trust",
)  # fmt: skip
EMOTION_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")


@dataclass(frozen=True)
class LabelScheme:
    labels: tuple[str, ...]
    activation: Activation
    decision: Decision
    thresholds: tuple[float, ...] | None = None
    threshold_profile: str | None = None

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise LabelSchemeError(f"label names must be unique: {self.labels}")
        if any(not label.strip() or "\n" in label for label in self.labels):
            raise LabelSchemeError(f"each label name must be one line of text: {self.labels}")
        if (self.decision == "threshold") != (self.thresholds is not None):
            raise LabelSchemeError("thresholds go with the threshold decision, and only with it")
        if self.thresholds is not None:
            if len(self.thresholds) != len(self.labels):
                raise LabelSchemeError(
                    f"{len(self.thresholds)} thresholds for {len(self.labels)} labels"
                )
            if not all(0.0 <= t <= 1.0 for t in self.thresholds):
                raise LabelSchemeError(f"thresholds must lie in [0, 1]: {self.thresholds}")

    def parameters(self) -> dict[str, str]:
        """The config parameters that publish this scheme (see emoclient.protocol)."""
        parameters = {
            protocol.PARAM_LABELS: json.dumps(list(self.labels)),
            protocol.PARAM_ACTIVATION: self.activation,
            protocol.PARAM_DECISION: self.decision,
        }
        if self.thresholds is not None:
            parameters[protocol.PARAM_THRESHOLDS] = json.dumps(list(self.thresholds))
        if self.threshold_profile is not None:
            parameters[protocol.PARAM_THRESHOLD_PROFILE] = self.threshold_profile
        return parameters
