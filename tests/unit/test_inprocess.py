"""The ragged preamble of the encoder: what it builds from a merged batch of flat tensors (the
exported encoder's own batches are in tests/e2e/test_inprocess.py)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from emoexport import ragged


def padded_identity_model() -> onnx.ModelProto:
    """A graph that returns its padded inputs as they arrive: shows what the preamble builds."""
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["b", "s"]) for n in ("ids", "mask")
    ]
    outputs = [
        helper.make_tensor_value_info(f"{n}.out", TensorProto.INT64, ["b", "s"])
        for n in ("ids", "mask")
    ]
    nodes = [helper.make_node("Identity", [n], [f"{n}.out"]) for n in ("ids", "mask")]
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def test_preamble_rebuilds_the_padded_matrix_of_a_merged_batch() -> None:
    model = ragged.add_preamble(padded_identity_model(), {"ids": 1, "mask": 0})
    session = ort.InferenceSession(model.SerializeToString())
    # Two requests merged: one text of 3 tokens; two texts padded to 2 (the second has 1 token).
    flat_ids = np.array([5, 6, 7, 8, 9, 4, 1], dtype=np.int64)
    flat_mask = np.array([1, 1, 1, 1, 1, 1, 0], dtype=np.int64)
    lengths = np.array([[3], [2], [2]], dtype=np.int32)
    ids, mask = session.run(None, {"ids": flat_ids, "mask": flat_mask, "text_lengths": lengths})
    assert ids.tolist() == [[5, 6, 7], [8, 9, 1], [4, 1, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0]]
