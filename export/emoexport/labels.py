"""How a model's logits become served decisions: label names, activation, decision rule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from emoclient import protocol

Activation = Literal["sigmoid", "softmax", "none"]  # none: the model outputs probabilities
Decision = Literal["threshold", "argmax"]


@dataclass(frozen=True)
class LabelScheme:
    labels: tuple[str, ...]
    activation: Activation
    decision: Decision
    thresholds: tuple[float, ...] | None = None
    threshold_profile: str | None = None

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"label names must be unique: {self.labels}")
        if (self.decision == "threshold") != (self.thresholds is not None):
            raise ValueError("thresholds go with the threshold decision, and only with it")
        if self.thresholds is not None:
            if len(self.thresholds) != len(self.labels):
                raise ValueError(f"{len(self.thresholds)} thresholds for {len(self.labels)} labels")
            if not all(0.0 <= t <= 1.0 for t in self.thresholds):
                raise ValueError(f"thresholds must lie in [0, 1]: {self.thresholds}")

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
