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


def gather(inputs: dict[str, np.ndarray], names: list[str], layout: str) -> np.ndarray:
    """[batch, labels] of one request's model outputs, before the activation."""
    if layout == "logits":
        return inputs[names[0]]
    if layout == "label_pairs":
        return np.stack([inputs[name][:, 1] for name in names], axis=1)
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


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
        self.input_names = [spec["name"] for spec in config["input"]]
        self.layout = parameters["input_layout"]
        self.scores_output, self.predicted_output = (spec["name"] for spec in config["output"])
        self.activate = ACTIVATIONS[parameters["activation"]]
        self.decision = parameters["decision"]
        thresholds = json.loads(parameters.get("thresholds", "null"))
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float32)

    def execute(self, requests: list[Any]) -> list[Any]:
        batches = [
            gather(
                {n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.input_names},
                self.input_names,
                self.layout,
            )
            for r in requests
        ]
        scores = self.activate(np.concatenate(batches))
        predicted = decide(scores, self.decision, self.thresholds)
        bounds = np.cumsum([len(batch) for batch in batches])[:-1]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(self.scores_output, request_scores),
                    pb_utils.Tensor(self.predicted_output, request_predicted),
                ]
            )
            for request_scores, request_predicted in zip(
                np.split(scores, bounds), np.split(predicted, bounds)
            )
        ]
