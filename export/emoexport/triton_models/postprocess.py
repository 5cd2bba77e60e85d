"""Triton Python model: one [batch, labels] tensor → per-label scores and the thresholded decision.

The input is a classifier's logits, or a head's positive probabilities. `activation` is sigmoid
for multi-label classifiers (each label its own binary question), softmax for single-label ones,
none for heads that output probabilities. `decision` is
`threshold` (a label is predicted when its score is at least its threshold) or `argmax` (exactly
the best label). All come from the config that export writes, so per-label thresholds are set at
export and visible in the served config.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton: unit tests and the export parity gate
    pb_utils = None

# The config parameters this model reads; export writes them. They are also published on the
# ensemble under the same names (emoclient.protocol), which this file cannot import: it runs in
# Triton's python stub, where only numpy is certain.
ACTIVATION = "activation"
DECISION = "decision"
THRESHOLDS = "thresholds"


def sigmoid(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    # exp(-|x|) never overflows; both branches are the same function.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def identity(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.astype(np.float32)


ACTIVATIONS = {"sigmoid": sigmoid, "softmax": softmax, "none": identity}


def decide(scores: np.ndarray, decision: str, thresholds: np.ndarray | None) -> np.ndarray:
    """BOOL [batch, labels]: which labels are predicted."""
    if decision == "argmax":
        predicted = np.zeros(scores.shape, dtype=bool)
        predicted[np.arange(len(scores)), scores.argmax(axis=-1)] = True
        return predicted
    if decision == "threshold":
        return scores >= thresholds
    raise ValueError(f"unknown decision rule {decision!r}")


class Decisions:
    """Model outputs → (scores, predicted), as this model's config says."""

    def __init__(self, parameters: dict[str, str]) -> None:
        self.activate = ACTIVATIONS[parameters[ACTIVATION]]
        self.decision = parameters[DECISION]
        thresholds = json.loads(parameters.get(THRESHOLDS, "null"))
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float32)

    def __call__(self, batches: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(scores FP32, predicted BOOL), each [batch, labels], for each request's input."""
        scores = self.activate(np.concatenate(batches))
        predicted = decide(scores, self.decision, self.thresholds)
        bounds = np.cumsum([len(batch) for batch in batches])[:-1]
        return list(zip(np.split(scores, bounds), np.split(predicted, bounds)))


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.decisions = Decisions(
            {key: value["string_value"] for key, value in config["parameters"].items()}
        )
        (self.input,) = (spec["name"] for spec in config["input"])
        self.scores_output, self.predicted_output = (spec["name"] for spec in config["output"])

    def execute(self, requests: list[Any]) -> list[Any]:
        batches = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(self.scores_output, scores),
                    pb_utils.Tensor(self.predicted_output, predicted),
                ]
            )
            for scores, predicted in self.decisions(batches)
        ]
