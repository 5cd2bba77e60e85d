"""Triton Python model: model outputs → per-label scores and the thresholded decision.

`input_layout` is `logits` (one [labels] tensor from a classifier) or `label_pairs` (one
(negative, positive) probability pair per label, from an ONNX head; the score is the positive
one). `activation` is sigmoid for multi-label classifiers (each label its own binary question),
softmax for single-label ones, none for heads that output probabilities. `decision` is
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

# The config parameters this model reads; export writes them. ACTIVATION, DECISION and
# THRESHOLDS are also published on the ensemble under the same names (emoclient.protocol),
# which this file cannot import: it runs in Triton's python stub, where only numpy is certain.
INPUT_LAYOUT = "input_layout"
ACTIVATION = "activation"
DECISION = "decision"
THRESHOLDS = "thresholds"
# INPUT_LAYOUT values
LOGITS = "logits"
LABEL_PAIRS = "label_pairs"


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


def positive_scores(pairs: list[np.ndarray]) -> np.ndarray:
    """[batch, labels] from one [batch, 2] (P(negative), P(positive)) pair per label."""
    return np.stack([pair[:, 1] for pair in pairs], axis=1)


def gather(inputs: dict[str, np.ndarray], names: list[str], layout: str) -> np.ndarray:
    """[batch, labels] of one request's model outputs, before the activation."""
    if layout == LOGITS:
        return inputs[names[0]]
    if layout == LABEL_PAIRS:
        return positive_scores([inputs[name] for name in names])
    raise ValueError(f"unknown input layout {layout!r}")


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

    def __init__(self, parameters: dict[str, str], input_names: list[str]) -> None:
        self.input_names = input_names
        self.layout = parameters[INPUT_LAYOUT]
        self.activate = ACTIVATIONS[parameters[ACTIVATION]]
        self.decision = parameters[DECISION]
        thresholds = json.loads(parameters.get(THRESHOLDS, "null"))
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float32)

    def __call__(self, batches: list[dict[str, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(scores FP32, predicted BOOL), each [batch, labels], for each request's inputs."""
        gathered = [gather(inputs, self.input_names, self.layout) for inputs in batches]
        scores = self.activate(np.concatenate(gathered))
        predicted = decide(scores, self.decision, self.thresholds)
        bounds = np.cumsum([len(batch) for batch in gathered])[:-1]
        return list(zip(np.split(scores, bounds), np.split(predicted, bounds)))


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.decisions = Decisions(
            {key: value["string_value"] for key, value in config["parameters"].items()},
            [spec["name"] for spec in config["input"]],
        )
        self.scores_output, self.predicted_output = (spec["name"] for spec in config["output"])

    def execute(self, requests: list[Any]) -> list[Any]:
        names = self.decisions.input_names
        batches = [
            {n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in names} for r in requests
        ]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(self.scores_output, scores),
                    pb_utils.Tensor(self.predicted_output, predicted),
                ]
            )
            for scores, predicted in self.decisions(batches)
        ]
