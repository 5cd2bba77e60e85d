"""The quality gate of reduced precisions and the TensorRT encoder config, without exporting:
the gate decides on validation and reports test, in the model's label order (the exports
themselves are in tests/e2e/test_precision.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from emoexport.configs import Batching, TensorRT, TensorSpec, onnx_config
from emoexport.labels import GO_EMOTIONS_LABELS
from emoexport.quality import QualityError, gate
from emotrain.datasets import load_split
from emotrain.evaluation import SplitQualityCheck

TEXTS = 40


def write_go_emotions(directory: Path) -> Path:
    """A tiny labelled dataset in go_emotions' format, labels spread over its texts; each split
    its own texts, and the test split labelled otherwise than validation."""
    directory.mkdir()
    (directory / "labels.txt").write_text("\n".join(GO_EMOTIONS_LABELS) + "\n")
    n = len(GO_EMOTIONS_LABELS)
    for split, step in (("train", 3), ("dev", 3), ("test", 5)):
        rows = [f"{split} text {i}\t{i % n},{(step * i) % n}\tid{i}" for i in range(TEXTS)]
        (directory / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return directory


@pytest.fixture
def go_emotions_data(tmp_path: Path) -> Path:
    return write_go_emotions(tmp_path / "go_emotions")


def test_split_quality_check_maps_the_model_label_order(go_emotions_data: Path) -> None:
    split = load_split(go_emotions_data, "test")
    model_labels = tuple(reversed(split.labels))  # the model's columns are in another order

    def perfect(texts: list[str]) -> np.ndarray:
        return split.targets[:, ::-1]

    def silent(texts: list[str]) -> np.ndarray:
        return np.zeros_like(split.targets)

    report = SplitQualityCheck(split).compare(perfect, silent, model_labels)
    assert report.reference == pytest.approx(
        np.mean([1.0 if split.targets[:, i].any() else 0.0 for i in range(len(split.labels))])
    )
    assert report.candidate == 0.0 and report.drop == report.reference
    with pytest.raises(QualityError, match="over the limit"):
        gate(report, 0.01)


def test_the_gate_decides_on_validation_and_reports_test(go_emotions_data: Path) -> None:
    """The candidate decides as the reference on validation and says nothing on test: the gate
    passes at a zero limit, and the test figures are shown beside it, deciding nothing."""
    check = SplitQualityCheck.of(go_emotions_data)
    validation = load_split(go_emotions_data, "validation")
    test = load_split(go_emotions_data, "test")
    assert check.decides.texts == validation.texts and check.reports.texts == test.texts
    truth = {
        text: row for split in (validation, test) for text, row in zip(split.texts, split.targets)
    }

    def perfect(texts: list[str]) -> np.ndarray:
        return np.array([truth[text] for text in texts])

    def silent_on_test(texts: list[str]) -> np.ndarray:
        return np.array([truth[text] & text.startswith("dev") for text in texts])

    report = check.compare(perfect, silent_on_test, GO_EMOTIONS_LABELS)
    assert report.data == "go_emotions/dev.tsv" and report.texts == TEXTS
    assert report.drop == 0.0 and report.reference > 0
    held_out = report.held_out
    assert held_out is not None and held_out.data == "go_emotions/test.tsv"
    assert held_out.candidate == 0.0 and held_out.drop == held_out.reference > 0
    assert held_out.held_out is None
    assert gate(report, 0.0) is report  # the test split's drop decides nothing
    assert "held out (reported only)" in str(report) and "go_emotions/test.tsv" in str(report)
    alone = SplitQualityCheck(validation).compare(perfect, silent_on_test, GO_EMOTIONS_LABELS)
    assert alone.held_out is None and alone.drop == report.drop


def _tensorrt_parameters(config: mc.ModelConfig) -> dict[str, str]:
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    return dict(accelerator.parameters)


@pytest.mark.parametrize(("fp16", "mode"), [(False, "FP32"), (True, "FP16")])
def test_tensorrt_encoder_config(fp16: bool, mode: str) -> None:
    config = onnx_config(
        "m_encoder",
        [TensorSpec("input_ids", mc.TYPE_INT64, [-1]), TensorSpec("attention_mask", 8, [-1])],
        [TensorSpec("logits", mc.TYPE_FP32, [6])],
        batching=Batching(max_batch_size=32),
        queue_delay_us=500,
        threads=0,
        ragged_inputs=True,
        tensorrt=TensorRT(fp16=fp16, max_length=128, cache_path="/cache/m_encoder"),
    )
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert _tensorrt_parameters(config) == {
        "precision_mode": mode,
        "max_workspace_size_bytes": str(1 << 30),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": "/cache/m_encoder",
        # Ragged inputs: flat token tensors, and each text's length (emoexport.ragged).
        "trt_profile_min_shapes": "input_ids:1,attention_mask:1,text_lengths:1x1",
        "trt_profile_opt_shapes": "input_ids:4096,attention_mask:4096,text_lengths:32x1",
        "trt_profile_max_shapes": "input_ids:4096,attention_mask:4096,text_lengths:32x1",
    }
