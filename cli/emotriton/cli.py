"""Export a Hugging Face classifier to Triton, serve a model repository, classify texts.

Every option can also be set by an environment variable, named in its help text. Subcommands
import their heavy dependencies only when they run, so `classify` works with the SDK alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _env_default(parser: argparse.ArgumentParser) -> Callable[..., argparse.Action]:
    """`add_argument` whose default comes from EMOTRITON_<DEST> when that variable is set."""

    def add(*flags: str, default: Any = None, help: str = "", **options: Any) -> argparse.Action:
        dest = options.get("dest") or flags[-1].lstrip("-").replace("-", "_")
        variable = f"EMOTRITON_{dest.upper()}"
        if variable in os.environ:
            raw = os.environ[variable]
            if options.get("action") == "store_true":
                default = raw.lower() in ("1", "true", "yes")
            else:
                default = options.get("type", str)(raw)
        shown = f" (default: {default})" if default not in (None, False) else ""
        return parser.add_argument(
            *flags, default=default, help=f"{help}{shown} [env: {variable}]", **options
        )

    return add


def _add_export(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="export a Hugging Face classifier into a Triton ensemble",
        description="Export SOURCE (a hub id or a local directory) as ensemble NAME: "
        "NAME_tokenizer → NAME_encoder → NAME_postprocess. With --head, SOURCE is a "
        "sentence-transformers encoder and NAME_head sits between the encoder and the "
        "postprocess. Nothing is written unless the exported pipeline matches PyTorch within "
        "the tolerance.",
    )
    parser.add_argument("source", nargs="?", help="hub id (owner/model) or local model directory")
    parser.add_argument("--list-recipes", action="store_true", help="show the recipes and exit")
    add = _env_default(parser)
    add("--name", help="ensemble name clients call (required)")
    add("--head", help="ONNX head folder or hub id (seed 001's format, with thresholds.json)")
    add("--recipe", help="override the recipe chosen from the model's config (see --list-recipes)")
    add(
        "--thresholds",
        help="multi-label decisions: a number, a JSON file of label → threshold, "
        "or a recipe's profile name (go-emotions-roberta: card)",
    )
    add("--logits-output", help="the model output that holds the logits: a tuple index or a name")
    add("--repository", type=Path, default=Path("model_repository"), help="Triton model repository")
    add(
        "--max-length",
        type=int,
        help="truncate texts to this many tokens (default: the model's limit)",
    )
    add("--max-batch-size", type=int, default=64, help="most texts per request and per batch")
    add(
        "--max-queue-delay-us", type=int, default=500, help="dynamic batcher wait for more requests"
    )
    add("--device", choices=["auto", "cpu", "gpu"], default="auto", help="encoder instance kind")
    add("--instances", type=int, default=1, help="encoder instances per device")
    add("--revision", help="hub revision (branch, tag or commit)")
    add("--trust-remote-code", action="store_true", help="run the model repository's own code")
    add("--tolerance", type=float, default=1e-4, help="parity gate: max |Δprobability| vs PyTorch")
    add("--overwrite", action="store_true", help="replace an earlier export of NAME")
    add(
        "--no-fusion",
        action="store_true",
        help="serve the encoder graph as exported, without onnxruntime's transformer fusions",
    )
    add(
        "--precision",
        choices=["fp32", "int8", "fp16"],
        default="fp32",
        help="encoder precision: int8 for CPUs (see docs/precision.md), fp16 for GPUs",
    )
    add(
        "--calibration-data",
        help="int8/fp16: a labelled go_emotions or dair-ai emotion folder (or hub id); its test "
        "split's macro-F1 is measured at fp32 and at the chosen precision",
    )
    add(
        "--max-metric-drop",
        type=float,
        default=0.01,
        help="with --calibration-data: refuse the export when macro-F1 drops by more than this",
    )
    add(
        "--accelerator",
        choices=["none", "tensorrt"],
        default="none",
        help="tensorrt: the native backend runs the encoder on TensorRT (implies --device gpu)",
    )
    add(
        "--tensorrt-cache",
        default="/tmp/emotriton-tensorrt",
        help="with --accelerator tensorrt: where the server keeps built engines (a server path)",
    )
    parser.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    from emoexport.configs import Batching
    from emoexport.exporter import ExportOptions, export_classifier, export_embedding_classifier
    from emoexport.recipes import RECIPES

    if args.list_recipes:
        for recipe in RECIPES:
            print(f"{recipe.name:22s} {recipe.description}")
        return 0
    if not args.source or not args.name:
        raise SystemExit("emotriton export: SOURCE and --name are required")
    _quiet_transformers()
    quality_check = None
    if args.calibration_data:
        from emoexport.datasets import load_split
        from emoexport.evaluation import SplitQualityCheck

        quality_check = SplitQualityCheck(load_split(args.calibration_data, "test"))
    options = ExportOptions(
        name=args.name,
        repository=args.repository,
        max_length=args.max_length,
        batching=Batching(args.max_batch_size, args.max_queue_delay_us),
        device=args.device,
        instances=args.instances,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        recipe=args.recipe,
        thresholds=args.thresholds,
        logits_output=args.logits_output,
        tolerance=args.tolerance,
        overwrite=args.overwrite,
        fuse=not args.no_fusion,
        precision=args.precision,
        quality_check=quality_check,
        max_metric_drop=args.max_metric_drop,
        accelerator=args.accelerator,
        tensorrt_cache=args.tensorrt_cache,
    )
    if args.head:
        result = export_embedding_classifier(args.source, args.head, options, log=_log)
    else:
        result = export_classifier(args.source, options, log=_log)
    scheme = result.scheme
    print(
        f"exported {result.name}: {len(scheme.labels)} labels, "
        f"{scheme.activation} + {scheme.decision}, "
        f"max_length {result.max_length}, {result.precision} → {args.repository}"
    )
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _quiet_transformers() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def _add_train_head(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train-head",
        help="fit an ONNX head (seed 001's format) on sentence embeddings of a labelled dataset",
        description="Embed the train, validation and test splits with ENCODER (cached), fit a "
        "head, tune each label's threshold for F1 on validation, and write model.onnx, "
        "thresholds.json and metrics (JSON and Markdown, validation and test) into --out.",
    )
    add = _env_default(parser)
    add("--encoder", default="sentence-transformers/all-MiniLM-L6-v2", help="sentence encoder")
    add(
        "--data",
        required="EMOTRITON_DATA" not in os.environ,
        help="go_emotions or dair-ai emotion folder, or a hub dataset id",
    )
    add("--out", type=Path, required="EMOTRITON_OUT" not in os.environ, help="head folder to write")
    add("--hidden", type=int, default=512, help="hidden units (0: a linear head)")
    add("--dropout", type=float, default=0.1, help="dropout before each linear layer's input")
    add("--epochs", type=int, default=40, help="most epochs (early stopping on validation loss)")
    add("--learning-rate", type=float, default=1e-3, help="AdamW learning rate")
    add("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    add("--seed", type=int, default=0, help="random seed")
    add(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "emotriton" / "embeddings",
        help="embedding cache",
    )
    add("--no-cache", action="store_true", help="embed again even if cached")
    parser.set_defaults(run=_train_head)


def _train_head(args: argparse.Namespace) -> int:
    from emoexport.head_training import HeadSettings, fit_head

    _quiet_transformers()
    settings = HeadSettings(
        hidden=args.hidden,
        dropout=args.dropout,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        seed=args.seed,
    )
    cache = None if args.no_cache else args.cache_dir
    result = fit_head(args.encoder, args.data, args.out, settings, cache, log=_log)
    test, validation = result.test, result.validation
    print(
        f"wrote {args.out}: test macro-F1 {test.macro.f1:.3f} "
        f"(validation {validation.macro.f1:.3f}), weighted F1 {test.weighted.f1:.3f}; "
        f"see {args.out / 'metrics.md'}"
    )
    return 0


def _add_eval(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval",
        help="classify a labelled split through the served model and print the metrics table",
    )
    add = _env_default(parser)
    add("--model", required="EMOTRITON_MODEL" not in os.environ, help="served ensemble name")
    add(
        "--data",
        required="EMOTRITON_DATA" not in os.environ,
        help="go_emotions or dair-ai emotion folder, or a hub dataset id",
    )
    add("--split", default="test", help="train, validation (dev) or test")
    add("--url", help="server address, HOST:PORT (default: localhost:8001, or :8000 for http)")
    add("--protocol", choices=["grpc", "http"], default="grpc", help="wire protocol")
    add("--json", type=Path, help="also write the table as JSON here")
    add("--markdown", type=Path, help="also write the table as Markdown here")
    parser.set_defaults(run=_eval)


def _eval(args: argparse.Namespace) -> int:
    from emoclient import Client
    from emoexport.datasets import load_split
    from emoexport.evaluation import evaluate_served

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


def _add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the local Triton server on a model repository",
        description="Run Triton 2.51 (from the nvidia-pytriton wheel) on a model repository "
        "until Ctrl-C or SIGTERM.",
    )
    add = _env_default(parser)
    add("--repository", type=Path, default=Path("model_repository"), help="Triton model repository")
    add("--host", default="127.0.0.1", help="bind address (0.0.0.0 exposes the server)")
    add("--http-port", type=int, default=8000, help="HTTP/REST port")
    add("--grpc-port", type=int, default=8001, help="gRPC port")
    add("--metrics-port", type=int, default=8002, help="Prometheus metrics port")
    add("--log-verbose", type=int, default=0, help="Triton log verbosity (0 = info)")
    add("--grpc-tls-cert", type=Path, help="PEM server certificate: serve gRPC over TLS")
    add("--grpc-tls-key", type=Path, help="PEM key of --grpc-tls-cert")
    add("--grpc-tls-client-ca", type=Path, help="PEM CA that client certificates must chain to")
    parser.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from emoclient import Client
    from emoserve import GrpcTls, LocalServer

    tls = None
    if args.grpc_tls_cert or args.grpc_tls_key:
        if not (args.grpc_tls_cert and args.grpc_tls_key):
            raise SystemExit("emotriton serve: --grpc-tls-cert and --grpc-tls-key go together")
        tls = GrpcTls(args.grpc_tls_cert, args.grpc_tls_key, args.grpc_tls_client_ca)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    server = LocalServer(
        args.repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
        stream_logs=True,
        grpc_tls=tls,
    )
    try:
        server.start()
        endpoints = server.endpoints
        with Client(endpoints.http_url, protocol="http") as client:
            names = [info.name for info in client.models()]
        print(
            f"\nemotriton: serving {', '.join(names) or 'no emotion models'} "
            f"from {server.repository}\n"
            f"  gRPC    {endpoints.grpc_url}\n  HTTP    http://{endpoints.http_url}\n"
            f"  metrics {endpoints.metrics_url}\nCtrl-C stops it.",
            flush=True,
        )
        code = server.wait()
        print(f"emotriton: tritonserver exited with code {code}", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        print("\nemotriton: stopping", file=sys.stderr)
        return 0
    finally:
        server.stop()


def _add_classify(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "classify",
        help="classify texts with a served model",
        description="Classify TEXTs, or one text per line of --file or of standard input "
        "(no TEXT, or '-'). Prints one JSON object per text, or a table.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    add = _env_default(parser)
    add("--model", required="EMOTRITON_MODEL" not in os.environ, help="served ensemble name")
    add("--url", help="server address, HOST:PORT (default: localhost:8001, or :8000 for http)")
    add("--protocol", choices=["grpc", "http"], default="grpc", help="wire protocol")
    add("--timeout", type=float, default=60.0, help="seconds to wait for each request")
    add("--file", type=Path, help="read texts from this file, one per line")
    add("--top-k", type=int, help="keep at most the K best predicted labels")
    parser.add_argument(
        "--threshold",
        action="append",
        metavar="T|LABEL=T",
        help="replace the served thresholds: one number for every label, or LABEL=T (repeatable)",
    )
    add("--format", choices=["jsonl", "table"], default="jsonl", help="output format")
    parser.set_defaults(run=_classify)


def _threshold(values: list[str] | None) -> float | dict[str, float] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return float(values[0])
    pairs = [value.partition("=") for value in values]
    if any(not sep for _, sep, _ in pairs):
        raise SystemExit("emotriton classify: --threshold is one number, or LABEL=T pairs")
    return {label: float(number) for label, _, number in pairs}


def _read_texts(args: argparse.Namespace) -> list[str]:
    if args.file:
        return args.file.read_text(encoding="utf-8").splitlines()
    if not args.texts or args.texts == ["-"]:
        return sys.stdin.read().splitlines()
    return args.texts


def _classify(args: argparse.Namespace) -> int:
    from emoclient import Client

    texts = _read_texts(args)
    with Client(args.url, protocol=args.protocol, timeout=args.timeout) as client:
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


def _add_loadtest(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "loadtest",
        help="run Locust headless against a server, or a local one on a repository",
        description="Load-test a served model with Locust (single texts and batches, weighted "
        "3:1), write Locust's CSV and HTML reports into --out, and print requests/s, texts/s, "
        "latency percentiles and failures. Exits 1 if any request failed.",
    )
    add = _env_default(parser)
    add("--model", required="EMOTRITON_MODEL" not in os.environ, help="served ensemble name")
    add("--url", help="server address, HOST:PORT (default: localhost:8001, or :8000 for http)")
    add("--repository", type=Path, help="start a local server on this repository instead")
    add("--protocol", choices=["grpc", "http"], default="grpc", help="wire protocol")
    add("--users", type=int, default=4, help="concurrent Locust users")
    add("--spawn-rate", type=float, default=4.0, help="users started per second")
    add("--duration", type=int, default=30, help="seconds of load")
    add("--batch-size", type=int, default=16, help="texts in a batch request")
    add("--corpus", type=Path, help="texts, one per line (default: a go_emotions sample)")
    add("--out", type=Path, default=Path("build/loadtest"), help="folder for the reports")
    parser.set_defaults(run=_loadtest)


def _loadtest(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from emoclient._core import DEFAULT_URLS
    from emoload.runner import run_locust

    local = None
    if args.repository:
        from emoserve import LocalServer

        local = LocalServer(args.repository)
    with local or nullcontext():
        if local is not None:
            url = local.endpoints.grpc_url if args.protocol == "grpc" else local.endpoints.http_url
        else:
            url = args.url or DEFAULT_URLS[args.protocol]
        summary = run_locust(
            url, args.protocol, args.model, args.users, args.spawn_rate, args.duration,
            args.batch_size, args.corpus, args.out,
        )  # fmt: skip
    print(f"{args.protocol} {args.users} users: {summary}")
    print(f"reports: {args.out}/report.html, {args.out}/locust_stats.csv")
    return 1 if summary.failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotriton", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    _add_export(commands)
    _add_train_head(commands)
    _add_serve(commands)
    _add_classify(commands)
    _add_eval(commands)
    _add_loadtest(commands)
    return parser


# Every exception class these packages define carries a message written for the user.
_OWN_PACKAGES = ("emoclient.", "emoexport.", "emoserve.", "emoload.")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except Exception as error:
        if not type(error).__module__.startswith(_OWN_PACKAGES):
            raise
        print(f"emotriton: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
