"""The Python-based onnxruntime backend: session options, and batching of requests."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from emoserve import onnxruntime_backend as backend


@pytest.fixture(scope="module")
def session(exported) -> ort.InferenceSession:
    return ort.InferenceSession(str(exported.models[1] / "1" / "model.onnx"))


def inputs(batch: int, length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 100, (batch, length), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


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


def test_same_shaped_requests_run_as_one_batch_with_unchanged_results(session) -> None:
    requests = [inputs(1, 7, 0), inputs(3, 7, 1), inputs(2, 12, 2), inputs(2, 7, 3)]
    assert sorted(map(len, backend.group_by_shape(requests).values())) == [1, 3]
    results = backend.run_batched(session, requests, ["logits"])
    for request, result in zip(requests, results):
        (alone,) = session.run(["logits"], request)
        assert result["logits"].shape == (len(request["input_ids"]), 28)
        np.testing.assert_allclose(result["logits"], alone, atol=1e-5)


def test_a_failing_request_does_not_fail_the_others(session) -> None:
    broken = inputs(1, 5, 4)
    broken["input_ids"] = broken["input_ids"].astype(
        np.int32
    )  # wrong dtype: onnxruntime refuses it
    results = backend.run_batched(session, [inputs(2, 5, 5), broken, inputs(1, 5, 6)], ["logits"])
    assert isinstance(results[1], Exception)
    assert results[0]["logits"].shape == (2, 28) and results[2]["logits"].shape == (1, 28)
