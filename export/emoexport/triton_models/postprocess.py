"""Triton Python model: logits → per-label scores and the thresholded decision.

`activation` is sigmoid for multi-label models (each label is its own binary question) and
softmax for single-label ones. `decision` is `threshold` (a label is predicted when its score is
at least its threshold) or `argmax` (exactly the best label). Both come from the config, which
export writes, so per-label thresholds are set at export and visible in the served config.
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


ACTIVATIONS = {"sigmoid": sigmoid, "softmax": softmax}


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
        self.logits_input = config["input"][0]["name"]
        self.scores_output, self.predicted_output = (spec["name"] for spec in config["output"])
        self.activate = ACTIVATIONS[parameters["activation"]]
        self.decision = parameters["decision"]
        thresholds = json.loads(parameters.get("thresholds", "null"))
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float32)

    def execute(self, requests: list[Any]) -> list[Any]:
        logits = [
            pb_utils.get_input_tensor_by_name(r, self.logits_input).as_numpy() for r in requests
        ]
        scores = self.activate(np.concatenate(logits))
        predicted = decide(scores, self.decision, self.thresholds)
        bounds = np.cumsum([len(batch) for batch in logits])[:-1]
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
