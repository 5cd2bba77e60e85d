"""Export-time graph work: transformer fusions under the parity gate, int8 and fp16 encoders,
the quality gate of reduced precisions on exported models, and TensorRT encoders."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoexport import exporter, ragged
from emoexport.errors import ExportError
from emoexport.exporter import ExportOptions, export_classifier
from emoexport.labels import GO_EMOTIONS_LABELS
from emotrain import toy_models
from emotrain.datasets import load_split
from emotrain.evaluation import SplitQualityCheck
from emotriton.cli import main

KINDS = sorted(toy_models.BUILDERS)


@pytest.fixture(scope="module")
def toys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toys")
    return {kind: toy_models.build(kind, root / kind) for kind in KINDS}


@pytest.fixture(scope="module")
def go_emotions_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny labelled split in go_emotions' format: the toy corpus, labels spread over it."""
    directory = tmp_path_factory.mktemp("go_emotions")
    (directory / "labels.txt").write_text("\n".join(GO_EMOTIONS_LABELS) + "\n")
    n = len(GO_EMOTIONS_LABELS)
    rows = [
        f"{text}\t{index % n},{(3 * index) % n}\tid{index}"
        for index, text in enumerate(toy_models.CORPUS.splitlines())
    ]
    for split in ("train", "dev", "test"):
        (directory / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return directory


def _encoder_graph(repository: Path, name: str) -> onnx.ModelProto:
    return onnx.load(str(repository / f"{name}_encoder" / "1" / "model.onnx"))


def _ops(model: onnx.ModelProto) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


def _encoder_config(repository: Path, name: str) -> mc.ModelConfig:
    text = (repository / f"{name}_encoder" / "config.pbtxt").read_text()
    return text_format.Parse(text, mc.ModelConfig())


@pytest.mark.parametrize("kind", KINDS)
def test_fused_encoder_keeps_parity(toys, kind: str, tmp_path: Path) -> None:
    result = export_classifier(str(toys[kind]), ExportOptions(name="fused", repository=tmp_path))
    assert result.fusions["attention"] == 2  # one per layer
    assert result.parity.max_abs_diff <= 1e-4
    ops = _ops(_encoder_graph(tmp_path, "fused"))
    assert ops["Attention"] == 2 and ops["SkipLayerNormalization"] >= 4 and ops["BiasGelu"] == 2
    assert ops["Softmax"] == 0


def test_fusions_that_break_parity_are_dropped(
    toys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fuse = exporter.fuse_transformer

    def fuse_wrongly(source: Path, target: Path) -> dict[str, int]:
        counts = real_fuse(source, target)
        model = onnx.load(str(target))
        biggest = max(model.graph.initializer, key=lambda tensor: np.prod(tensor.dims))
        weights = onnx.numpy_helper.to_array(biggest)
        biggest.CopyFrom(onnx.numpy_helper.from_array(weights * 1.5, biggest.name))
        onnx.save(model, str(target))
        return counts

    monkeypatch.setattr(exporter, "fuse_transformer", fuse_wrongly)
    log: list[str] = []
    result = export_classifier(
        str(toys["roberta-multilabel"]),
        ExportOptions(name="unfused", repository=tmp_path),
        log=log.append,
    )
    assert result.fusions == {}
    assert any("fusions dropped" in line for line in log)
    assert _ops(_encoder_graph(tmp_path, "unfused"))["Attention"] == 0


def test_int8_export_of_a_roberta_classifier(toys, tmp_path: Path) -> None:
    """quantize_dynamic used to fail on the exported RoBERTa classifier's stale weight shapes."""
    log: list[str] = []
    result = export_classifier(
        str(toys["roberta-multilabel"]),
        ExportOptions(name="int8", repository=tmp_path, precision="int8"),
        log=log.append,
    )
    assert result.precision == "int8" and result.quality is None
    assert result.fusions.get("attention")  # int8 quantises the fused graph's MatMuls
    assert any("no quality gate ran" in line for line in log)
    graph = _encoder_graph(tmp_path, "int8")
    ops = _ops(graph)
    assert ops["DynamicQuantizeLinear"] > 0 and ops["MatMulInteger"] > 0
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.array([[0, 5, 9, 2], [0, 7, 2, 1]], dtype=np.int64)
    padded = {"input_ids": ids, "attention_mask": (ids != 1).astype(np.int64)}
    (logits,) = session.run(None, ragged.flatten(padded))
    assert logits.shape == (2, len(GO_EMOTIONS_LABELS)) and np.isfinite(logits).all()


def test_quality_gate_accepts_a_drop_within_the_limit(
    toys, go_emotions_data: Path, tmp_path: Path
) -> None:
    options = ExportOptions(
        name="gated",
        repository=tmp_path,
        precision="int8",
        quality_check=SplitQualityCheck(load_split(go_emotions_data, "test")),
        max_metric_drop=1.0,
    )
    result = export_classifier(str(toys["roberta-multilabel"]), options)
    assert result.quality is not None
    assert result.quality.texts == len(toy_models.CORPUS.splitlines())
    assert 0.0 <= result.quality.candidate <= 1.0 and 0.0 <= result.quality.reference <= 1.0
    assert (tmp_path / "gated_encoder").is_dir()


def test_quality_gate_refuses_a_drop_over_the_limit_and_writes_nothing(
    toys, go_emotions_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Through the CLI: a negative limit refuses even an int8 model that decides as fp32 does."""
    code = main(
        [
            "export",
            str(toys["roberta-multilabel"]),
            "--name",
            "gated",
            "--repository",
            str(tmp_path),
            "--precision",
            "int8",
            "--calibration-data",
            str(go_emotions_data),
            "--max-metric-drop",
            "-0.5",
        ]
    )
    assert code == 2
    assert "refusing to export: quality: macro-F1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_fp16_encoder_keeps_fp32_inputs_and_outputs(toys, tmp_path: Path) -> None:
    export_classifier(
        str(toys["bert-single-label"]),
        ExportOptions(name="half", repository=tmp_path, precision="fp16", device="gpu"),
    )
    graph = _encoder_graph(tmp_path, "half")
    weights = Counter(tensor.data_type for tensor in graph.graph.initializer)
    assert weights[onnx.TensorProto.FLOAT16] > weights[onnx.TensorProto.FLOAT]
    (output,) = graph.graph.output
    assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    config = _encoder_config(tmp_path, "half")
    assert config.output[0].data_type == mc.TYPE_FP32
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"precision": "fp16", "device": "cpu"}, "fp16 is for GPUs"),
        ({"precision": "int8", "device": "gpu"}, "int8 is for CPUs"),
        ({"precision": "int8", "accelerator": "tensorrt"}, "int8 is for CPUs"),
        ({"accelerator": "tensorrt", "device": "cpu"}, "TensorRT runs on GPUs"),
    ],
)
def test_precision_and_device_mismatches_are_refused(
    toys, tmp_path: Path, options: dict, match: str
) -> None:
    with pytest.raises(ExportError, match=match):
        export_classifier(
            str(toys["bert-single-label"]),
            ExportOptions(name="refused", repository=tmp_path, **options),
        )
    assert list(tmp_path.iterdir()) == []


def _tensorrt_parameters(config: mc.ModelConfig) -> dict[str, str]:
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    return dict(accelerator.parameters)


def test_tensorrt_export_serves_the_unfused_fp32_graph(toys, tmp_path: Path) -> None:
    """TensorRT builds its fp16 engine from the fp32 graph, and fuses on its own."""
    result = export_classifier(
        str(toys["roberta-multilabel"]),
        ExportOptions(
            name="trt",
            repository=tmp_path,
            precision="fp16",
            accelerator="tensorrt",
            tensorrt_cache="/engines",
        ),
    )
    assert result.fusions == {}
    graph = _encoder_graph(tmp_path, "trt")
    assert _ops(graph)["Attention"] == 0
    assert all(t.data_type != onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    config = _encoder_config(tmp_path, "trt")
    parameters = _tensorrt_parameters(config)
    assert parameters["precision_mode"] == "FP16"
    assert parameters["trt_engine_cache_path"] == "/engines/trt_encoder"
    max_shapes = "input_ids:4096,attention_mask:4096,text_lengths:64x1"  # 64 texts of 64 tokens
    assert parameters["trt_profile_max_shapes"] == max_shapes
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
