"""The exported repository's Triton configs: an ensemble whose tensors connect, batching where it
belongs, load shed at the encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol
from emoexport import configs, ragged

from ..support import NEWER_THAN_2_51, fields_used


def load(directory: Path) -> mc.ModelConfig:
    return text_format.Parse((directory / "config.pbtxt").read_text(), mc.ModelConfig())


@pytest.mark.parametrize(
    ("name", "encoder_inputs"),
    [
        ("go_emotions", ["input_ids", "attention_mask"]),
        ("emotion", ["input_ids", "attention_mask"]),
        ("emotion_bert", ["input_ids", "token_type_ids", "attention_mask"]),
        ("toy_embedding", ["input_ids", "token_type_ids", "attention_mask"]),
        ("minilm", ["input_ids", "token_type_ids", "attention_mask"]),
    ],
)
def test_ensemble_wiring(repository: Path, name: str, encoder_inputs: list[str]) -> None:
    ensemble = load(repository / name)
    tokenizer, encoder, postprocess = (
        load(repository / f"{name}_{part}") for part in ("tokenizer", "encoder", "postprocess")
    )

    assert ensemble.platform == "ensemble"
    assert [i.name for i in ensemble.input] == [protocol.TEXT_INPUT]
    assert [o.name for o in ensemble.output] == [protocol.SCORES_OUTPUT, protocol.PREDICTED_OUTPUT]
    assert not ensemble.HasField("dynamic_batching"), "batching belongs to the composing models"
    # Each step reads only tensors the ensemble has by then; the last writes the outputs.
    available = {protocol.TEXT_INPUT}
    for step in ensemble.ensemble_scheduling.step:
        assert set(step.input_map.values()) <= available, step.model_name
        available |= set(step.output_map.values())
    assert {protocol.SCORES_OUTPUT, protocol.PREDICTED_OUTPUT} <= available

    # The encoder takes exactly what the model takes (BERT: token_type_ids too).
    assert sorted(i.name for i in encoder.input) == sorted(encoder_inputs)
    assert sorted(o.name for o in tokenizer.output) == sorted(encoder_inputs)
    assert encoder.backend == "onnxruntime" and encoder.default_model_filename == "model.onnx"
    # Two encoder instances: one is free whenever a batch is ready (ExportOptions.instances).
    assert [group.count for group in encoder.instance_group] == [2]
    assert all(list(i.dims) == [-1] and i.data_type == mc.TYPE_INT64 for i in encoder.input)
    for model in (tokenizer, encoder, postprocess):
        assert model.max_batch_size == ensemble.max_batch_size > 1
    # The tokenizer runs each request alone (test_reliability: malformed requests fail alone).
    assert encoder.HasField("dynamic_batching") and postprocess.HasField("dynamic_batching")
    assert tokenizer.backend == postprocess.backend == "python"

    labels = json.loads(ensemble.parameters[protocol.PARAM_LABELS].string_value)
    assert list(postprocess.output[0].dims) == list(ensemble.output[0].dims) == [len(labels)]
    assert ensemble.parameters[protocol.PARAM_KIND].string_value == protocol.CONTRACT_VERSION


def test_embedding_ensembles_put_the_head_between_encoder_and_postprocess(repository: Path) -> None:
    ensemble = load(repository / "minilm")
    steps = [step.model_name for step in ensemble.ensemble_scheduling.step]
    assert steps == ["minilm_tokenizer", "minilm_encoder", "minilm_head", "minilm_postprocess"]
    head = load(repository / "minilm_head")
    labels = json.loads(ensemble.parameters[protocol.PARAM_LABELS].string_value)
    assert [(i.name, list(i.dims)) for i in head.input] == [("logits", [384])]
    assert [(o.name, list(o.dims)) for o in head.output] == [("positive_scores", [len(labels)])]
    assert head.backend == "onnxruntime"
    assert [group.count for group in head.instance_group] == [1]
    postprocess = load(repository / "minilm_postprocess")
    assert [(i.name, list(i.dims)) for i in postprocess.input] == [("positive_scores", [28])]
    assert ensemble.parameters[protocol.PARAM_ACTIVATION].string_value == "none"


def test_multi_label_uses_sigmoid_and_thresholds(repository: Path) -> None:
    parameters = load(repository / "go_emotions").parameters
    assert parameters[protocol.PARAM_ACTIVATION].string_value == "sigmoid"
    assert parameters[protocol.PARAM_DECISION].string_value == "threshold"
    assert json.loads(parameters[protocol.PARAM_THRESHOLDS].string_value) == [0.5] * 28
    single = load(repository / "emotion").parameters
    assert single[protocol.PARAM_ACTIVATION].string_value == "softmax"
    assert single[protocol.PARAM_DECISION].string_value == "argmax"
    assert protocol.PARAM_THRESHOLDS not in single


def test_only_the_encoder_batches_ragged_inputs_and_waits_for_a_batch(repository: Path) -> None:
    encoder = load(repository / "minilm_encoder")
    assert all(i.allow_ragged_batch for i in encoder.input)
    (batch_input,) = encoder.batch_input
    assert batch_input.kind == mc.BatchInput.BATCH_ITEM_SHAPE
    assert list(batch_input.target_name) == [ragged.TEXT_LENGTHS]
    assert list(batch_input.source_input) == ["input_ids"]
    assert batch_input.data_type == mc.TYPE_INT32
    window = configs.Batching().max_queue_delay_us
    assert encoder.dynamic_batching.max_queue_delay_microseconds == window
    threads = str(configs.Batching().encoder_threads)
    assert encoder.parameters[configs.INTRA_OP_THREADS].string_value == threads
    head = load(repository / "minilm_head")
    assert not any(i.allow_ragged_batch for i in head.input) and not head.batch_input
    assert head.parameters[configs.INTRA_OP_THREADS].string_value == "1"
    for part in ("head", "postprocess"):
        config = load(repository / f"minilm_{part}")
        assert config.dynamic_batching.max_queue_delay_microseconds == 0, part
    # The tokenizer runs each request alone: one unreadable request cannot fail a batch.
    assert not load(repository / "minilm_tokenizer").HasField("dynamic_batching")


def test_the_encoder_sheds_load_by_queue_size_and_deadline(repository: Path) -> None:
    defaults = configs.Batching()
    policy = load(repository / "minilm_encoder").dynamic_batching.default_queue_policy
    assert policy.max_queue_size == defaults.max_queue_size
    assert policy.default_timeout_microseconds == defaults.queue_timeout_us
    assert policy.timeout_action == mc.ModelQueuePolicy.REJECT
    assert policy.allow_timeout_override
    bulk = load(repository / "minilm_encoder").dynamic_batching.priority_queue_policy
    assert bulk[protocol.PRIORITY_BULK].max_queue_size == defaults.bulk_queue_size
    # After the encoder, nothing is thrown away: what it computed is answered.
    for part in ("head", "postprocess"):
        assert not load(repository / f"minilm_{part}").dynamic_batching.HasField(
            "default_queue_policy"
        ), part
    assert not load(repository / "minilm").HasField("dynamic_batching")  # the ensemble


def test_every_config_loads_on_both_triton_versions(repository: Path) -> None:
    """Built as tritonclient 2.73's messages (production's Triton), and using nothing 2.51 (the
    local server, which loads them all in these tests) lacks."""
    paths = sorted(repository.glob("*/config.pbtxt"))
    assert len(paths) >= 4 * 8
    for path in paths:
        assert not fields_used(load(path.parent)) & NEWER_THAN_2_51, path


def test_every_composing_model_is_warmed_up_and_every_ensemble_cached(repository: Path) -> None:
    for path in sorted(repository.glob("*/config.pbtxt")):
        config = load(path.parent)
        if config.platform == "ensemble":
            assert config.response_cache.enable, path
        else:
            assert config.model_warmup, path
