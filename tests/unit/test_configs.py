"""Generated Triton configs, without an export: valid protobuf, instance groups that fit the
device (tests/e2e/test_configs.py reads the configs of an exported repository)."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoexport import configs

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
