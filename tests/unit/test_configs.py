"""Generated Triton configs, without an export: valid protobuf, instance groups that fit the
device (tests/e2e/test_configs.py reads the configs of an exported repository)."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol as wire
from emoexport import configs

from ..support import NEWER_THAN_2_51, fields_used

IDS = [configs.TensorSpec("input_ids", mc.TYPE_INT64, [-1])]
LOGITS = [configs.TensorSpec("logits", mc.TYPE_FP32, [6])]


@pytest.mark.parametrize(
    ("device", "kind"),
    [
        ("cpu", mc.ModelInstanceGroup.KIND_CPU),
        ("gpu", mc.ModelInstanceGroup.KIND_GPU),
        ("auto", mc.ModelInstanceGroup.KIND_AUTO),
    ],
)
def test_encoder_instance_group_fits_the_device(device: str, kind: int) -> None:
    config = configs.onnx_config(
        "e",
        IDS,
        LOGITS,
        batching=configs.Batching(32, 100),
        queue_delay_us=100,
        threads=2,
        device=device,
        instances=2,
    )
    (group,) = config.instance_group
    assert group.kind == kind and group.count == 2
    assert config.max_batch_size == 32
    assert config.dynamic_batching.max_queue_delay_microseconds == 100


def test_render_round_trips() -> None:
    config = configs.onnx_config(
        "e", IDS, LOGITS, batching=configs.Batching(), queue_delay_us=0, threads=0
    )
    assert text_format.Parse(configs.render(config), mc.ModelConfig()) == config


def ensemble() -> mc.ModelConfig:
    step = configs.Step("m", {"a": "b"}, {"c": "d"})
    return configs.ensemble_config("e", [step], ("x", "y"), {}, batching=configs.Batching())


def test_the_version_check_finds_a_field_2_51_lacks_however_deep() -> None:
    config = ensemble()
    assert not fields_used(config) & NEWER_THAN_2_51
    assert ("ModelEnsembling", "step") in fields_used(config)
    config.ensemble_scheduling.max_inflight_requests = 4
    config.model_metrics.metric_control.add().metric_identifier.family = "x"
    assert fields_used(config) & NEWER_THAN_2_51 == NEWER_THAN_2_51


def test_the_encoder_serves_interactive_requests_first_and_queues_bulk_ones_apart() -> None:
    batching = configs.Batching()
    config = configs.onnx_config(
        "e", IDS, LOGITS, batching=batching, queue_delay_us=0, threads=0, sheds=True
    )
    batcher = config.dynamic_batching
    assert list(batcher.preferred_batch_size) == [batching.preferred_batch_size]
    assert batcher.priority_levels == wire.PRIORITY_BULK
    assert batcher.default_priority_level == wire.PRIORITY_INTERACTIVE
    assert batcher.default_queue_policy.max_queue_size == batching.max_queue_size
    bulk = batcher.priority_queue_policy[wire.PRIORITY_BULK]
    assert bulk.max_queue_size == batching.bulk_queue_size
    assert bulk.default_timeout_microseconds == batching.bulk_queue_timeout_us
    assert bulk.timeout_action == mc.ModelQueuePolicy.REJECT and bulk.allow_timeout_override
    assert wire.PRIORITY_INTERACTIVE not in batcher.priority_queue_policy  # the default's


def test_every_model_is_warmed_up_with_the_shapes_it_serves() -> None:
    """The encoder: one text and a preferred batch, at the longest length (the batches it runs
    most); the postprocess a full batch."""
    batching = configs.Batching(max_batch_size=8, preferred_batch_size=2)
    encoder = configs.onnx_config(
        "e", IDS, LOGITS, batching=batching, queue_delay_us=0, threads=0, warmup_length=64
    )
    assert [w.batch_size for w in encoder.model_warmup] == [1, 2]
    for warmup in encoder.model_warmup:
        (ids,) = warmup.inputs.values()
        assert list(ids.dims) == [64] and ids.zero_data and ids.data_type == mc.TYPE_INT64
    post = configs.postprocess_config("p", LOGITS[0], 6, {}, batching=batching)
    assert [w.batch_size for w in post.model_warmup] == [8]
    assert list(post.model_warmup[0].inputs["logits"].dims) == [6]


def test_the_ensemble_asks_for_the_response_cache() -> None:
    config = ensemble()
    assert config.response_cache.enable


def test_the_ensembles_scores_name_their_labels_for_the_classification_extension() -> None:
    config = ensemble()
    scores, predicted = config.output
    assert scores.name == wire.SCORES_OUTPUT and scores.label_filename == configs.LABELS_FILE
    assert not predicted.label_filename  # booleans are no scores to rank
    assert configs.labels_file(("x", "y")).splitlines() == ["x", "y"]
