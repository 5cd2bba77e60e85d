"""The int8 recipe's choice, on validation: every variant measured the same way, one chosen.

Exports the model once at fp32 without fusions, then for each quantisation variant serves the
exported ensemble in-process (emoexport.inprocess: the served tokenizer, the encoder graph in
onnxruntime, the served postprocess and its thresholds) on the **validation** split, in requests
of 32 texts, and measures macro-F1, the label sets that differ from fp32's, and texts/s against
fp32 (batches of 32 and single texts, wall clock, in this run). The variant chosen is the
fastest at batch 32 among those within the quality gate's limit (0.01 macro-F1) of fp32; test
macro-F1 is measured once, for fp32 and the chosen variant only, and decides nothing.

    python scripts/int8_variants.py --model models/go_emotions-minilm-l6 \\
        --thresholds models/go_emotions-minilm-l6/thresholds.json \\
        --data ../shared/data/go_emotions --out docs/int8-variants.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from emoexport.exporter import ExportOptions, export_classifier
from emoexport.inprocess import ExportedEnsemble
from emoexport.optimize import fuse_transformer
from emoexport.precision import quantize_int8, without_weight_shapes
from emoexport.quality import DEFAULT_MAX_METRIC_DROP
from emoexport.ragged import flatten
from emotrain.datasets import LabelledSplit, load_split
from emotrain.metrics import evaluate

NAME = "variants"
BATCH = 32
SPEED_TEXTS = 512  # validation texts timed in batches of BATCH
SINGLE_TEXTS = 128  # and one at a time
CALIBRATION_TEXTS = 256  # training texts for the static variants
Quantise = Callable[[Path, Path, Path], None]  # (unfused fp32, fused fp32, target)


class _TrainingTexts(CalibrationDataReader):
    """The encoder's inputs for training texts, in requests of BATCH, as the server feeds it."""

    def __init__(self, ensemble: ExportedEnsemble, texts: list[str]) -> None:
        tokenizer = ensemble.steps[0]
        self._feeds: Iterator[dict[str, np.ndarray]] = (
            flatten(tokenizer.model({"TEXT": _raw(texts[i : i + BATCH])}))
            for i in range(0, len(texts), BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _raw(texts: list[str]) -> np.ndarray:
    return np.array([[text.encode()] for text in texts], dtype=np.object_)


def _dynamic(**options: object) -> Quantise:
    def run(unfused: Path, fused: Path, target: Path) -> None:
        quantize_dynamic(without_weight_shapes(unfused), target, **options)

    return run


def _dynamic_fused(**options: object) -> Quantise:
    def run(unfused: Path, fused: Path, target: Path) -> None:
        quantize_dynamic(without_weight_shapes(fused), target, **options)

    return run


def _static(calibration: Callable[[], CalibrationDataReader], **options: object) -> Quantise:
    def run(unfused: Path, fused: Path, target: Path) -> None:
        quantize_static(
            without_weight_shapes(unfused),
            target,
            calibration(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            **options,
        )

    return run


def variants(calibration: Callable[[], CalibrationDataReader]) -> dict[str, Quantise]:
    per_channel = {"per_channel": True, "weight_type": QuantType.QInt8}
    return {
        "dynamic QInt8, per tensor (plain quantize_dynamic)": _dynamic(weight_type=QuantType.QInt8),
        "dynamic QInt8, per channel (export's recipe)": lambda u, f, t: quantize_int8(u, t),
        "dynamic, per channel, MatMul only (embeddings fp32)": _dynamic(
            **per_channel, op_types_to_quantize=["MatMul"]
        ),
        "dynamic, per channel, reduce_range": _dynamic(**per_channel, reduce_range=True),
        "dynamic, per channel, QUInt8 weights": _dynamic(
            per_channel=True, weight_type=QuantType.QUInt8
        ),
        "fused graph, then dynamic, per channel": _dynamic_fused(**per_channel),
        "fused graph, then dynamic, per channel, MatMul only": _dynamic_fused(
            **per_channel, op_types_to_quantize=["MatMul"]
        ),
        # Entropy and percentile calibration cannot run here: their histograms need batches of
        # one shape, and the encoder's inputs are ragged (emoexport.ragged).
        "static QDQ, per channel, MinMax, QUInt8 activations": _static(
            calibration, calibrate_method=CalibrationMethod.MinMax
        ),
    }


def decisions(ensemble: ExportedEnsemble, texts: list[str]) -> np.ndarray:
    parts = [ensemble.classify(texts[i : i + BATCH])[1] for i in range(0, len(texts), BATCH)]
    return np.concatenate(parts)


def macro_f1(split: LabelledSplit, predicted: np.ndarray, labels: tuple[str, ...]) -> float:
    columns = [labels.index(label) for label in split.labels]
    return float(evaluate(split.targets, predicted[:, columns], split.labels).macro.f1)


def speed(ensemble: ExportedEnsemble, texts: list[str]) -> tuple[float, float]:
    """texts/s in batches of BATCH, and one text per request (after one warm-up request)."""
    ensemble.classify(texts[:BATCH])
    started = time.perf_counter()
    decisions(ensemble, texts[:SPEED_TEXTS])
    batched = SPEED_TEXTS / (time.perf_counter() - started)
    started = time.perf_counter()
    for text in texts[:SINGLE_TEXTS]:
        ensemble.classify([text])
    return batched, SINGLE_TEXTS / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--thresholds")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    validation, test = load_split(args.data, "validation"), load_split(args.data, "test")
    train = load_split(args.data, "train")
    with tempfile.TemporaryDirectory() as scratch:
        repository = Path(scratch) / "repository"
        options = ExportOptions(
            name=NAME, repository=repository, thresholds=args.thresholds, fuse=False
        )
        labels = export_classifier(args.model, options).scheme.labels
        version = repository / f"{NAME}_encoder" / "1"
        unfused = Path(scratch) / "fp32.onnx"
        shutil.copy(version / "model.onnx", unfused)
        fused = Path(scratch) / "fp32-fused.onnx"
        fuse_transformer(unfused, fused)
        reference = ExportedEnsemble(repository, NAME)
        calibration = lambda: _TrainingTexts(reference, train.texts[:CALIBRATION_TEXTS])  # noqa: E731
        fp32 = decisions(reference, validation.texts)
        fp32_f1 = macro_f1(validation, fp32, labels)
        fp32_speed = speed(reference, validation.texts)
        rows = [{"variant": "fp32 (reference)", "validation_macro_f1": fp32_f1, "drop": 0.0,
                 "changed_sets": 0, "speed_batch": 1.0, "speed_single": 1.0}]  # fmt: skip
        for name, quantise in variants(calibration).items():
            target = Path(scratch) / "int8.onnx"
            quantise(unfused, fused, target)
            shutil.copy(target, version / "model.onnx")
            ensemble = ExportedEnsemble(repository, NAME)
            predicted = decisions(ensemble, validation.texts)
            f1 = macro_f1(validation, predicted, labels)
            batched, single = speed(ensemble, validation.texts)
            rows.append(
                {
                    "variant": name,
                    "validation_macro_f1": f1,
                    "drop": fp32_f1 - f1,
                    "changed_sets": int((predicted != fp32).any(axis=1).sum()),
                    "speed_batch": batched / fp32_speed[0],
                    "speed_single": single / fp32_speed[1],
                }
            )
            print(rows[-1], flush=True)
        within = [row for row in rows[1:] if row["drop"] <= DEFAULT_MAX_METRIC_DROP]
        chosen = max(within, key=lambda row: row["speed_batch"])
        quantise = variants(calibration)[chosen["variant"]]
        quantise(unfused, fused, Path(scratch) / "chosen.onnx")
        shutil.copy(Path(scratch) / "chosen.onnx", version / "model.onnx")
        chosen_test = macro_f1(
            test, decisions(ExportedEnsemble(repository, NAME), test.texts), labels
        )
        reference_test = macro_f1(test, decisions(reference, test.texts), labels)
    report = {
        "model": args.model,
        "decided_on": f"{validation.name}, {len(validation.texts)} texts, requests of {BATCH}",
        "rule": f"fastest at batch {BATCH} within {DEFAULT_MAX_METRIC_DROP} macro-F1 of fp32",
        "machine": f"{platform.machine()}, fp32 texts/s batch {fp32_speed[0]:.0f}, "
        f"single {fp32_speed[1]:.0f}",
        "variants": rows,
        "chosen": chosen["variant"],
        "test": {"split": test.name, "fp32_macro_f1": reference_test, "int8_macro_f1": chosen_test},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["test"]), "chosen:", chosen["variant"])


if __name__ == "__main__":
    main()
