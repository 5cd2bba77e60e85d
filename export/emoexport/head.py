"""ONNX classification heads over sentence embeddings, in seed 001's format.

A head folder holds one ONNX model and `thresholds.json`. The model takes one input, `logits`,
of shape [batch, embedding dim], and has one output per label, named after the label, of shape
[batch, 2]: (P(negative), P(positive)). `thresholds.json` maps every label to the threshold its
positive probability must reach; its order is the label order clients see.

Export serves the head with a tail that gathers each label's P(positive) into one [batch, labels]
tensor: one tensor for Triton to route between the steps instead of one per label (each costs
the ensemble's scheduler and the postprocess per request).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from .errors import SourceError

THRESHOLDS_FILE = "thresholds.json"
# The served head's one output: [batch, labels] of P(positive), in label order.
POSITIVE_SCORES = "positive_scores"


def positive_scores(pairs: list[np.ndarray]) -> np.ndarray:
    """[batch, labels] from one [batch, 2] (P(negative), P(positive)) pair per label."""
    return np.stack([pair[:, 1] for pair in pairs], axis=1)


@dataclass(frozen=True)
class Head:
    onnx_path: Path
    input_name: str
    input_dim: int
    labels: tuple[str, ...]
    thresholds: tuple[float, ...]

    @cached_property
    def session(self) -> ort.InferenceSession:
        """The head in onnxruntime, loaded once."""
        return ort.InferenceSession(str(self.onnx_path), providers=["CPUExecutionProvider"])

    def positive_probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """[batch, labels]: each label's P(positive), in label order, by onnxruntime."""
        inputs = {self.input_name: embeddings.astype(np.float32)}
        return positive_scores(self.session.run(list(self.labels), inputs))

    def served_model(self) -> onnx.ModelProto:
        """The head with its tail: one POSITIVE_SCORES output instead of one pair per label."""
        model = onnx.load(str(self.onnx_path))
        graph = model.graph
        positive = helper.make_tensor("emotriton_positive_column", onnx.TensorProto.INT64, [1], [1])
        graph.initializer.append(positive)
        columns = [f"emotriton_{label}_positive" for label in self.labels]
        graph.node.extend(
            helper.make_node("Gather", [label, positive.name], [column], axis=1)
            for label, column in zip(self.labels, columns)
        )
        graph.node.append(helper.make_node("Concat", columns, [POSITIVE_SCORES], axis=1))
        del graph.output[:]
        graph.output.append(
            helper.make_tensor_value_info(
                POSITIVE_SCORES, onnx.TensorProto.FLOAT, ["batch", len(self.labels)]
            )
        )
        onnx.checker.check_model(model)
        return model


def _head_directory(source: str, revision: str | None) -> Path:
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision))
    except Exception as error:  # the hub client raises many unrelated types when offline
        raise SourceError(
            f"cannot load head {source!r}: not a directory, and the hub said: {error}"
        ) from error


def load_head(source: str, revision: str | None = None) -> Head:
    directory = _head_directory(source, revision)
    models = sorted(directory.glob("*.onnx"))
    if len(models) != 1:
        raise SourceError(f"head {directory} must hold exactly one .onnx file, found {len(models)}")
    graph = onnx.load(str(models[0]), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 2:
        raise SourceError(f"head {models[0].name} must take one [batch, dim] input")
    input_dim = inputs[0].type.tensor_type.shape.dim[1].dim_value
    outputs = [o.name for o in graph.output]
    for output in graph.output:
        dims = [d.dim_value for d in output.type.tensor_type.shape.dim]
        if len(dims) != 2 or dims[1] not in (0, 2):
            raise SourceError(f"head output {output.name!r} must be [batch, 2], not {dims}")
    thresholds_path = directory / THRESHOLDS_FILE
    if not thresholds_path.is_file():
        raise SourceError(f"head {directory} has no {THRESHOLDS_FILE}")
    thresholds = json.loads(thresholds_path.read_text())
    if set(thresholds) != set(outputs):
        missing, extra = set(outputs) - set(thresholds), set(thresholds) - set(outputs)
        raise SourceError(
            f"{THRESHOLDS_FILE} must name exactly the head's outputs: "
            f"missing {sorted(missing)}, unknown {sorted(extra)}"
        )
    return Head(
        onnx_path=models[0],
        input_name=inputs[0].name,
        input_dim=input_dim,
        labels=tuple(thresholds),
        thresholds=tuple(float(t) for t in thresholds.values()),
    )
