"""The Python-based onnxruntime backend on the exported encoder: its batch input, and merged
requests of different lengths that each get their own result, or fail alone."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import json_format

from emoexport import ragged
from emoexport.inprocess import read_config
from emoserve import onnxruntime_backend as backend


@pytest.fixture(scope="module")
def encoder_config(exported) -> dict:
    """The exported encoder's config, as the JSON Triton hands to initialize()."""
    config = read_config(exported.models[1])
    return json.loads(json_format.MessageToJson(config, preserving_proto_field_name=True))


@pytest.fixture(scope="module")
def session(exported) -> ort.InferenceSession:
    return ort.InferenceSession(str(exported.models[1] / "1" / "model.onnx"))


def inputs(batch: int, length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 100, (batch, length), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def test_the_exported_encoder_batch_input_is_what_the_preamble_expects(encoder_config) -> None:
    (spec,) = encoder_config["batch_input"]
    request = inputs(3, 6, 0)
    value = backend.BatchInput.from_config(spec).value([request["input_ids"]])
    np.testing.assert_array_equal(value, ragged.flatten(request)[ragged.TEXT_LENGTHS])


def test_merged_requests_of_different_lengths_give_each_its_own_result(
    session, encoder_config
) -> None:
    names = [spec["name"] for spec in encoder_config["input"]]
    ragged_names = {spec["name"] for spec in encoder_config["input"] if spec["allow_ragged_batch"]}
    assert set(names) == ragged_names == {"input_ids", "attention_mask"}
    batch_inputs = [backend.BatchInput.from_config(s) for s in encoder_config["batch_input"]]
    requests = [inputs(1, 7, 0), inputs(3, 4, 1), inputs(2, 12, 2), inputs(1, 2, 3)]
    requests[1]["attention_mask"][1, 2:] = 0  # a multi-text request padded to its longest text
    results = backend.run_batched(session, requests, ["logits"], ragged_names, batch_inputs)
    for request, result in zip(requests, results):
        (alone,) = session.run(["logits"], ragged.flatten(request))
        assert result["logits"].shape == (len(request["input_ids"]), 28)
        np.testing.assert_allclose(result["logits"], alone, atol=1e-5)


def test_a_failing_request_does_not_fail_the_others(session, encoder_config) -> None:
    batch_inputs = [backend.BatchInput.from_config(s) for s in encoder_config["batch_input"]]
    names = {"input_ids", "attention_mask"}
    broken = inputs(1, 5, 4)
    broken["input_ids"] = broken["input_ids"].astype(np.int32)  # onnxruntime refuses it
    requests = [inputs(2, 5, 5), broken, inputs(1, 9, 6)]
    results = backend.run_batched(session, requests, ["logits"], names, batch_inputs)
    assert isinstance(results[1], Exception)
    assert results[0]["logits"].shape == (2, 28) and results[2]["logits"].shape == (1, 28)


def test_a_malformed_request_merged_with_others_fails_alone(session, encoder_config) -> None:
    """Triton checks each input's shape alone: a direct caller can send a mask shorter than its
    ids, which breaks the merged run; the other requests are run again without it."""
    batch_inputs = [backend.BatchInput.from_config(s) for s in encoder_config["batch_input"]]
    names = {"input_ids", "attention_mask"}
    short_mask = inputs(1, 6, 7)
    short_mask["attention_mask"] = short_mask["attention_mask"][:, :2]
    requests = [inputs(2, 5, 5), inputs(1, 9, 6), short_mask]
    results = backend.run_batched(session, requests, ["logits"], names, batch_inputs)
    assert isinstance(results[2], Exception)
    for request, result in zip(requests[:2], results[:2]):
        (alone,) = session.run(["logits"], ragged.flatten(request))
        np.testing.assert_allclose(result["logits"], alone, atol=1e-5)
