"""The encoder graph in the precision it is served in.

- int8: dynamic quantisation of the fused graph's MatMuls, with per-channel weight scales
  (QInt8 weights; activations are quantised per batch, as uint8, at run time; the embeddings
  and the fused attention stay fp32). Of the variants measured on the default model's
  validation split (docs/int8-variants.json, docs/precision.md), it ran fastest of those that
  kept macro-F1 within the quality gate's 0.01 of fp32; quantising every operator lost 0.015,
  per-tensor scales 0.017, static calibration collapsed.
- fp16: every float tensor in float16 except the graph's inputs and outputs, so the served
  config (FP32 tensors) does not change. For GPUs: onnxruntime's CPU provider has few float16
  kernels.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.onnx_model import OnnxModel

from .options import Precision


def without_weight_shapes(path: Path) -> onnx.ModelProto:
    """The model without the shape annotations of its weights. The quantiser rewrites a Gemm's
    transposed weight under the same name, and the stale annotation then fails its shape
    inference (seen on RoBERTa classifiers: "(768) vs (28)"). The annotations of weights are
    redundant with the weights themselves; those of computed tensors stay, as the quantiser
    needs the types of the fused operators' outputs, which ONNX cannot infer."""
    model = onnx.load(str(path))
    weights = {initializer.name for initializer in model.graph.initializer}
    kept = [info for info in model.graph.value_info if info.name not in weights]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    return model


def quantize_int8(source: Path, target: Path) -> None:
    quantize_dynamic(
        without_weight_shapes(source),
        target,
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )


def convert_fp16(source: Path, target: Path) -> None:
    model = OnnxModel(onnx.load(str(source)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(target))


def convert(precision: Precision, source: Path, target: Path) -> Path:
    """`source` (an fp32 graph) in `precision`: `target`, or `source` itself for fp32."""
    if precision == "fp32":
        return source
    {"int8": quantize_int8, "fp16": convert_fp16}[precision](source, target)
    return target
