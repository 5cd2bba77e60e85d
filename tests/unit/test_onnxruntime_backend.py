"""The Python-based onnxruntime backend without an export: session options, batch inputs, and
batching of requests as Triton's backends batch them (ragged inputs flattened and concatenated).
The exported encoder run through it is in tests/e2e/test_onnxruntime_backend.py."""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from emoserve import onnxruntime_backend as backend


def inputs(batch: int, length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 100, (batch, length), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def batch_input(kind: str, data_type: str = "TYPE_INT32") -> backend.BatchInput:
    return backend.BatchInput.from_config(
        {"kind": kind, "target_name": ["t"], "data_type": data_type, "source_input": ["input_ids"]}
    )


def test_session_options_follow_the_native_backend_parameters() -> None:
    options = backend.session_options(
        {
            "intra_op_thread_count": {"string_value": "3"},
            "inter_op_thread_count": {"string_value": "2"},
            "execution_mode": {"string_value": "1"},
            "enable_mem_arena": {"string_value": "0"},
        }
    )
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 2
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert options.enable_cpu_mem_arena is False


def _matmul_model() -> bytes:
    weights = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 256])],
        [numpy_helper.from_array(weights, "w")],
    )
    opsets = [helper.make_opsetid("", 17)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9).SerializeToString()


def test_idle_threads_burn_no_cpu_between_runs() -> None:
    """With onnxruntime's default (spinning on), this loop burns as much CPU asleep as awake."""
    options = backend.session_options({"intra_op_thread_count": {"string_value": "2"}})
    session = ort.InferenceSession(_matmul_model(), options, providers=["CPUExecutionProvider"])
    feed = {"x": np.ones((512, 256), dtype=np.float32)}
    idle_cpu = 0.0
    for _ in range(20):
        session.run(None, feed)
        before = time.process_time()
        time.sleep(0.01)
        idle_cpu += time.process_time() - before
    assert idle_cpu < 0.05, f"{idle_cpu:.3f} CPU-s while idle for 0.2 s"


# Requests of shapes [1, 3], [2, 5], [1, 7], as Triton's BackendInputCollector describes them.
SOURCES = [np.zeros((1, 3)), np.zeros((2, 5)), np.zeros((1, 7))]


def test_batch_input_specs_are_read_from_the_config_json() -> None:
    spec = batch_input("BATCH_ITEM_SHAPE")
    assert spec == backend.BatchInput("BATCH_ITEM_SHAPE", ("t",), np.int32, "input_ids")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("BATCH_ELEMENT_COUNT", [3, 10, 7]),
        ("BATCH_ACCUMULATED_ELEMENT_COUNT", [3, 13, 20]),
        ("BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO", [0, 3, 13, 20]),
        ("BATCH_ITEM_SHAPE", [[3], [5], [5], [7]]),
        ("BATCH_ITEM_SHAPE_FLATTEN", [3, 5, 5, 7]),
    ],
)
def test_batch_inputs_hold_what_triton_computes(kind: str, expected: list) -> None:
    value = batch_input(kind).value(SOURCES)
    assert value.dtype == np.int32 and value.tolist() == expected


def test_max_element_count_is_carried_by_the_shape() -> None:
    value = batch_input("BATCH_MAX_ELEMENT_COUNT_AS_SHAPE", "TYPE_FP32").value(SOURCES)
    assert value.shape == (10,) and value.dtype == np.float32


def test_ragged_inputs_are_flattened_and_concatenated_with_their_batch_inputs() -> None:
    requests = [inputs(1, 3, 0), inputs(2, 5, 1)]
    requests[0]["attention_mask"] = np.ones((1, 5), dtype=np.int64)
    merged = backend.merge(
        requests, ragged={"input_ids"}, batch_inputs=[batch_input("BATCH_ITEM_SHAPE")]
    )
    expected_ids = np.concatenate([r["input_ids"].reshape(-1) for r in requests])
    np.testing.assert_array_equal(merged["input_ids"], expected_ids)
    assert merged["attention_mask"].shape == (3, 5)  # not ragged: batched along axis 0
    assert merged["t"].tolist() == [[3], [5], [5]]


def test_requests_of_any_length_group_together_when_their_inputs_are_ragged() -> None:
    requests = [inputs(1, 7, 0), inputs(3, 7, 1), inputs(2, 12, 2), inputs(2, 7, 3)]
    assert sorted(map(len, backend.group_by_shape(requests).values())) == [1, 3]
    ragged_names = {"input_ids", "attention_mask"}
    assert list(map(len, backend.group_by_shape(requests, ragged_names).values())) == [4]
