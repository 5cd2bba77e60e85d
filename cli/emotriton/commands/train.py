"""`emotriton finetune` and `train-head`: make a classifier from a labelled dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..settings import Add, add_fields, default_of, from_options
from . import Command, log, quiet_transformers

DATA_HELP = "go_emotions or dair-ai emotion folder, or a hub dataset id"


def _add_training(add: Add, written: str, settings: type) -> None:
    """--data and --out, and the options of a training settings dataclass."""
    add("--data", required=True, help=DATA_HELP)
    add("--out", type=Path, required=True, help=written)
    add_fields(add, settings)


def _wrote(out: Path, result: Any, detail: str = "") -> int:
    """Say what a training command wrote and how it scores (validation-tuned thresholds)."""
    test, validation = result.test, result.validation
    print(
        f"wrote {out}{detail}: test macro-F1 {test.macro.f1:.3f} "
        f"(validation {validation.macro.f1:.3f}), weighted F1 {test.weighted.f1:.3f}, "
        f"exact match {test.exact_match:.3f}; see {out / 'metrics.md'}"
    )
    return 0


def _train_head_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoexport.locate import MINILM_L6
    from emotrain.settings import HeadSettings

    add("--encoder", default=MINILM_L6, help="sentence encoder")
    _add_training(add, "head folder to write", HeadSettings)
    add(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "emotriton" / "embeddings",
        help="embedding cache",
    )
    add("--no-cache", action="store_true", help="embed again even if cached")


def _train_head(args: argparse.Namespace) -> int:
    from emotrain.head_training import fit_head
    from emotrain.settings import HeadSettings

    quiet_transformers()
    settings = from_options(HeadSettings, args)
    cache = None if args.no_cache else args.cache_dir
    result = fit_head(args.encoder, args.data, args.out, settings, cache, log=log)
    return _wrote(args.out, result)


def _finetune_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoexport.locate import MINILM_L6
    from emotrain.settings import FinetuneSettings

    add("--base", default=MINILM_L6, help="pre-trained encoder: a directory or hub id")
    _add_training(add, "model directory to write", FinetuneSettings)
    add(
        "--pooling",
        choices=["mean", "cls"],
        default=default_of(FinetuneSettings, "pooling"),
        help="mean: an added BERT layer mean-pools, as sentence encoders were trained; "
        "cls: the model's own pooler",
    )
    add("--full-precision", action="store_true", help="write float32 weights, not float16")
    add(
        "--float32-training",
        action="store_true",
        help="train in float32, not with bfloat16 autocast (slower where the CPU has bf16)",
    )
    add("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def _finetune(args: argparse.Namespace) -> int:
    import torch

    from emotrain.finetune import finetune
    from emotrain.settings import FinetuneSettings

    quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = from_options(
        FinetuneSettings,
        args,
        half_precision=not args.full_precision,
        bfloat16=not args.float32_training,
    )
    result = finetune(args.base, args.data, args.out, settings, log=log)
    return _wrote(args.out, result, f" (epoch {result.chosen_epoch})")


COMMANDS = (
    Command(
        "train-head",
        _train_head_options,
        _train_head,
        help="fit an ONNX classification head on sentence embeddings of a labelled dataset",
        description="Embed the train, validation and test splits with ENCODER (cached), fit a "
        "head, tune each label's threshold for F1 on validation, and write model.onnx, "
        "thresholds.json and metrics (JSON and Markdown, validation and test) into --out.",
    ),
    Command(
        "finetune",
        _finetune_options,
        _finetune,
        help="fine-tune an encoder end to end as a sequence classifier on a labelled dataset",
        description="Fine-tune BASE as a transformers sequence classifier on the train split "
        "(multi-label with sigmoid, or single-label with softmax when every text has one label), "
        "keep the epoch with the best validation macro-F1, tune each label's threshold for F1 on "
        "validation (multi-label), and write a Hugging Face model directory with "
        "thresholds.json and metrics (JSON and Markdown, validation and test) into --out, "
        "ready for `emotriton export OUT --thresholds OUT/thresholds.json`.",
    ),
)
