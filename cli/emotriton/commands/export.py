"""`emotriton export`: a Hugging Face classifier → a Triton ensemble in a model repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..settings import Add, UsageError, add_fields, from_options
from . import Command, log, quiet_transformers

REPOSITORY = Path("model_repository")  # where export writes and serve reads, by default


def _options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoexport.options import Batching, ExportOptions

    parser.add_argument("source", nargs="?", help="hub id (owner/model) or local model directory")
    parser.add_argument("--list-recipes", action="store_true", help="show the recipes and exit")
    add("--name", help="ensemble name clients call (required)")
    add(
        "--head",
        help="ONNX head folder or hub id: model.onnx mapping a sentence embedding to each "
        "label's (P(no), P(yes)), and thresholds.json",
    )
    add("--repository", type=Path, default=REPOSITORY, help="Triton model repository")
    add_fields(add, ExportOptions)
    add_fields(add, Batching)
    add(
        "--no-fusion",
        action="store_true",
        help="serve the encoder graph as exported, without onnxruntime's transformer fusions",
    )
    add(
        "--calibration-data",
        help="int8/fp16: a labelled go_emotions or dair-ai emotion folder (or hub id); macro-F1 "
        "on its validation split is measured at fp32 and at the chosen precision",
    )


def _run(args: argparse.Namespace) -> int:
    from emoexport.options import Batching, ExportOptions
    from emoexport.recipes import RECIPES

    if args.list_recipes:
        for recipe in RECIPES:
            print(f"{recipe.name:22s} {recipe.description}")
        return 0
    if not args.source or not args.name:
        raise UsageError("export needs SOURCE and --name")
    from emoexport.exporter import export_classifier, export_embedding_classifier

    quiet_transformers()
    quality_check = None
    if args.calibration_data:
        from emotrain.evaluation import SplitQualityCheck

        quality_check = SplitQualityCheck.of(args.calibration_data)
    options = from_options(
        ExportOptions,
        args,
        batching=from_options(Batching, args),
        fuse=not args.no_fusion,
        quality_check=quality_check,
    )
    if args.head:
        result = export_embedding_classifier(args.source, args.head, options, log=log)
    else:
        result = export_classifier(args.source, options, log=log)
    scheme = result.scheme
    print(
        f"exported {result.name}: {len(scheme.labels)} labels, "
        f"{scheme.activation} + {scheme.decision}, "
        f"max_length {result.max_length}, {result.precision} → {args.repository}"
    )
    return 0


COMMANDS = (
    Command(
        "export",
        _options,
        _run,
        help="export a Hugging Face classifier into a Triton ensemble",
        description="Export SOURCE (a hub id or a local directory) as ensemble NAME: "
        "NAME_tokenizer → NAME_encoder → NAME_postprocess. With --head, SOURCE is a "
        "sentence-transformers encoder and NAME_head sits between the encoder and the "
        "postprocess. Nothing is written unless the exported pipeline matches PyTorch within "
        "the tolerance.",
    ),
)
