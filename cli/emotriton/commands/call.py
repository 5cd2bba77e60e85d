"""`emotriton classify` and `eval`: call a served model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..settings import Add, UsageError, add_connection, number
from . import Command
from .train import DATA_HELP


def _classify_options(parser: argparse.ArgumentParser, add: Add) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    add_connection(add)
    add("--timeout", type=float, help="seconds to wait for each request (default: the SDK's)")
    add("--file", type=Path, help="read texts from this file, one per line")
    add("--top-k", type=int, help="keep at most the K best predicted labels")
    add(
        "--threshold",
        action="append",
        metavar="T|LABEL=T",
        help="replace the served thresholds: one number for every label, or LABEL=T "
        "(repeatable; the variable takes them comma-separated)",
    )
    add("--format", choices=["jsonl", "table"], default="jsonl", help="output format")


def _threshold(values: list[str] | None) -> float | dict[str, float] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return number("--threshold", values[0])
    pairs = [value.partition("=") for value in values]
    if any(not sep for _, sep, _ in pairs):
        raise UsageError("--threshold is one number, or LABEL=T pairs")
    return {label: number(f"--threshold {label}", value) for label, _, value in pairs}


def _read_texts(args: argparse.Namespace) -> list[str]:
    if args.file:
        try:
            return list(args.file.read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read --file {args.file}: {error}") from None
    if not args.texts or args.texts == ["-"]:
        return sys.stdin.read().splitlines()
    return list(args.texts)


def _classify(args: argparse.Namespace) -> int:
    from emoclient import Client

    texts = _read_texts(args)
    timeout = {} if args.timeout is None else {"timeout": args.timeout}
    with Client(args.url, protocol=args.protocol, **timeout) as client:
        results = client.classify(
            texts, model=args.model, top_k=args.top_k, threshold=_threshold(args.threshold)
        )
    for result in results:
        text = texts[result.index]
        if args.format == "jsonl":
            print(json.dumps({"text": text, **result.to_dict()}, ensure_ascii=False))
        else:
            shown = text if len(text) <= 48 else text[:47] + "…"
            labels = ", ".join(f"{label} {result.scores[label]:.2f}" for label in result.labels)
            print(f"{result.index:>5}  {shown:<48}  {labels or '-'}")
    return 0


def _eval_options(parser: argparse.ArgumentParser, add: Add) -> None:
    add_connection(add)
    add("--data", required=True, help=DATA_HELP)
    add("--split", default="test", help="train, validation (dev) or test")
    add("--json", type=Path, help="also write the table as JSON here")
    add("--markdown", type=Path, help="also write the table as Markdown here")


def _eval(args: argparse.Namespace) -> int:
    from emoclient import Client
    from emotrain.datasets import load_split
    from emotrain.evaluation import evaluate_served

    split = load_split(args.data, args.split)

    def progress(done: int, total: int) -> None:
        print(f"\rclassified {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    with Client(args.url, protocol=args.protocol) as client:
        report = evaluate_served(client, args.model, split, progress=progress)
    markdown = report.to_markdown(f"{args.model} on {split.name}")
    print(markdown)
    if args.markdown:
        args.markdown.write_text(markdown)
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0


COMMANDS = (
    Command(
        "eval",
        _eval_options,
        _eval,
        help="classify a labelled split through the served model and print the metrics table",
    ),
    Command(
        "classify",
        _classify_options,
        _classify,
        help="classify texts with a served model",
        description="Classify TEXTs, or one text per line of --file or of standard input "
        "(no TEXT, or '-'). Prints one JSON object per text, or a table.",
    ),
)
