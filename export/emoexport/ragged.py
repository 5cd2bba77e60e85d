"""Ragged batching for the encoder: requests of different text lengths run as one batch.

Triton's dynamic batcher merges only requests whose inputs have equal shapes. With
`allow_ragged_batch` on the encoder's inputs it merges requests of any length, and the backend
(the native onnxruntime one in NGC, or emoserve's local one) hands the model each input as one
flat 1-D tensor: every request's [texts, length] matrix, flattened and concatenated. The batch
input TEXT_LENGTHS (kind BATCH_ITEM_SHAPE of input_ids) says how long each text's row is: one
row [length] per text, so a request of n texts padded to length L gives n rows of L.

The exported graph starts with a preamble that rebuilds the padded [texts, longest] matrices
from the flat tensors, so the encoder pads only to the longest text of the merged batch, and
then runs unchanged. Where a request was itself padded (several texts of different lengths),
its padding is kept as it came, with its attention mask of zeros.

The preamble also keeps every id within the embedding table it indexes: an id out of range
(only a client calling the encoder directly, past the tokenizer, can send one) becomes the
padding id. Otherwise onnxruntime fails the whole merged batch, and so every request batched
with the bad one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper
from tritonclient.grpc import model_config_pb2 as mc

TEXT_LENGTHS = "text_lengths"
"""The batch input: INT32 [texts, 1], each text's padded length within its request."""

_LENGTHS_SOURCE = "input_ids"
_PADDED = "{}.padded"


def batch_input() -> mc.BatchInput:
    """The encoder config's batch input that the preamble reads."""
    return mc.BatchInput(
        kind=mc.BatchInput.BATCH_ITEM_SHAPE,
        target_name=[TEXT_LENGTHS],
        data_type=mc.TYPE_INT32,
        source_input=[_LENGTHS_SOURCE],
    )


def flatten(padded: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a Triton backend gives the encoder for one request of padded [texts, length]
    inputs: each input flattened, and TEXT_LENGTHS."""
    texts, length = padded[_LENGTHS_SOURCE].shape
    flat = {name: array.reshape(-1) for name, array in padded.items()}
    return {**flat, TEXT_LENGTHS: np.full((texts, 1), length, dtype=np.int32)}


def _rename_uses(graph: onnx.GraphProto, renames: Mapping[str, str]) -> None:
    """Point every node that reads a renamed tensor (in subgraphs too) at its new name."""
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        for attribute in node.attribute:
            for subgraph in [attribute.g, *attribute.graphs]:
                _rename_uses(subgraph, renames)


def _table_rows(graph: onnx.GraphProto, ids: str) -> int | None:
    """Rows of the embedding table that tensor `ids` indexes (a Gather of an initializer)."""
    tables = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] == ids:
            table = tables.get(node.input[0])
            if table is not None:
                return int(table.dims[0])
    return None


def add_preamble(model: onnx.ModelProto, pad_values: Mapping[str, int]) -> onnx.ModelProto:
    """`model`, taking padded INT64 [texts, length] inputs named as `pad_values`' keys, made to
    take the flat inputs and TEXT_LENGTHS instead (in place; returned for convenience)."""
    graph = model.graph
    names: Sequence[str] = list(pad_values)
    if not set(names) <= {i.name for i in graph.input}:
        raise ValueError(f"the graph has no input among {names}")
    _rename_uses(graph, {name: _PADDED.format(name) for name in names})

    def const(name: str, value: int) -> onnx.NodeProto:
        tensor = helper.make_tensor(name, TensorProto.INT64, [], [value])
        return helper.make_node("Constant", [], [name], value=tensor)

    nodes = [
        const("ragged.zero", 0),
        const("ragged.one", 1),
        helper.make_node("Constant", [], ["ragged.flat_shape"], value_ints=[-1]),
        helper.make_node("Constant", [], ["ragged.axis0"], value_ints=[0]),
        helper.make_node("Constant", [], ["ragged.axis1"], value_ints=[1]),
        # lengths [texts]; starts [texts]: where each text's row begins in the flat tensors
        helper.make_node("Reshape", [TEXT_LENGTHS, "ragged.flat_shape"], ["ragged.lengths32"]),
        helper.make_node("Cast", ["ragged.lengths32"], ["ragged.lengths"], to=TensorProto.INT64),
        helper.make_node("CumSum", ["ragged.lengths", "ragged.zero"], ["ragged.ends"]),
        helper.make_node("Sub", ["ragged.ends", "ragged.lengths"], ["ragged.starts"]),
        # positions [longest]; valid [texts, longest]: which cells hold a token of the request
        helper.make_node("ReduceMax", ["ragged.lengths"], ["ragged.longest"], keepdims=0),
        helper.make_node(
            "Range", ["ragged.zero", "ragged.longest", "ragged.one"], ["ragged.positions"]
        ),
        helper.make_node("Unsqueeze", ["ragged.positions", "ragged.axis0"], ["ragged.columns"]),
        helper.make_node("Unsqueeze", ["ragged.lengths", "ragged.axis1"], ["ragged.row_lengths"]),
        helper.make_node("Unsqueeze", ["ragged.starts", "ragged.axis1"], ["ragged.row_starts"]),
        helper.make_node("Less", ["ragged.columns", "ragged.row_lengths"], ["ragged.valid"]),
        helper.make_node("Add", ["ragged.row_starts", "ragged.columns"], ["ragged.cells"]),
        helper.make_node(
            "Where", ["ragged.valid", "ragged.cells", "ragged.zero"], ["ragged.index"]
        ),
    ]
    for name, pad in pad_values.items():
        gathered = f"ragged.gathered.{name}"
        rows = _table_rows(graph, _PADDED.format(name))
        if rows is not None:  # an id: in range, or the padding id
            in_table = [
                const(f"ragged.rows.{name}", rows),
                helper.make_node("Less", [gathered, f"ragged.rows.{name}"], [f"{gathered}.below"]),
                helper.make_node("Less", [gathered, "ragged.zero"], [f"{gathered}.negative"]),
                helper.make_node("Not", [f"{gathered}.negative"], [f"{gathered}.natural"]),
                helper.make_node(
                    "And", [f"{gathered}.below", f"{gathered}.natural"], [f"{gathered}.known"]
                ),
                helper.make_node(
                    "And", ["ragged.valid", f"{gathered}.known"], [f"ragged.keep.{name}"]
                ),
            ]
            keep = f"ragged.keep.{name}"
        else:
            in_table, keep = [], "ragged.valid"
        nodes += [
            const(f"ragged.pad.{name}", pad),
            helper.make_node("Gather", [name, "ragged.index"], [gathered]),
            *in_table,
            helper.make_node(
                "Where", [keep, gathered, f"ragged.pad.{name}"], [_PADDED.format(name)]
            ),
        ]
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + body)
    inputs = [
        helper.make_tensor_value_info(i.name, TensorProto.INT64, ["flat"])
        if i.name in pad_values
        else copy.deepcopy(i)
        for i in graph.input
    ]
    del graph.input[:]
    graph.input.extend(
        [*inputs, helper.make_tensor_value_info(TEXT_LENGTHS, TensorProto.INT32, ["texts", 1])]
    )
    onnx.checker.check_model(model)
    return model
