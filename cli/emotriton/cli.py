"""Export a Hugging Face classifier to Triton, serve a model repository, classify texts.

Every option can also be set by an environment variable, named in its help text and read only by
the command that runs. Subcommands import their heavy dependencies only when they run, so
`classify` works with the SDK alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emoclient import EmotritonError
from emoclient._core import DEFAULT_URLS


class UsageError(EmotritonError):
    """A command line or environment variable that cannot be used as it is."""


@dataclass(frozen=True)
class _EnvOption:
    """An option that an environment variable may set, read only when its command runs."""

    action: argparse.Action
    variable: str
    default: Any
    required: bool

    def resolve(self, args: argparse.Namespace) -> None:
        """Command line first, then the variable, then the default."""
        if getattr(args, self.action.dest) is not None:
            return
        raw = os.environ.get(self.variable)
        value = self.default if raw is None else self._parse(raw)
        if value is None and self.required:
            raise UsageError(f"{self.action.option_strings[0]} is required (or {self.variable})")
        setattr(args, self.action.dest, value)

    def _parse(self, raw: str) -> Any:
        if isinstance(self.action, argparse._StoreTrueAction):
            if raw.lower() not in _BOOLEANS:
                raise UsageError(f"{self.variable}={raw!r}: use one of {', '.join(_BOOLEANS)}")
            return _BOOLEANS[raw.lower()]
        if isinstance(self.action, argparse._AppendAction):
            return [self._convert(item.strip()) for item in raw.split(",") if item.strip()]
        return self._convert(raw)

    def _convert(self, raw: str) -> Any:
        try:
            value = (self.action.type or str)(raw)
        except (TypeError, ValueError):
            kind = getattr(self.action.type, "__name__", "value")
            raise UsageError(f"{self.variable}={raw!r}: not a valid {kind}") from None
        if self.action.choices is not None and value not in self.action.choices:
            choices = ", ".join(map(str, self.action.choices))
            raise UsageError(f"{self.variable}={raw!r}: choose from {choices}")
        return value


_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_ENV_OPTIONS: dict[str, list[_EnvOption]] = {}  # command → its options


REPOSITORY = Path("model_repository")  # where export writes and serve reads, by default


def _env_default(parser: argparse.ArgumentParser) -> Callable[..., argparse.Action]:
    """`add_argument` for options that EMOTRITON_<COMMAND>_<OPTION> may also set (`env` names
    another variable, for options that several commands share)."""
    command = parser.prog.split()[-1]
    registered = _ENV_OPTIONS.setdefault(command, [])
    parser.set_defaults(command=command)

    def add(
        *flags: str,
        default: Any = None,
        required: bool = False,
        env: str | None = None,
        help: str = "",
        **options: Any,
    ) -> argparse.Action:
        dest = options.get("dest") or flags[-1].lstrip("-").replace("-", "_")
        variable = env or f"EMOTRITON_{command}_{dest}".upper().replace("-", "_")
        shown = f" (default: {default})" if default not in (None, False) else ""
        if required:
            shown = " (required)"
        action = parser.add_argument(
            *flags, default=None, help=f"{help}{shown} [env: {variable}]", **options
        )
        registered.append(_EnvOption(action, variable, default, required))
        return action

    return add


def _add_connection(add: Callable[..., argparse.Action]) -> None:
    """--model, --url and --protocol: the same options, and variables, in every command that
    talks to a served model."""
    add("--model", required=True, env="EMOTRITON_MODEL", help="served ensemble name")
    add(
        "--url",
        env="EMOTRITON_URL",
        help="server address, HOST:PORT (default: localhost:8001, or :8000 for http)",
    )
    add(
        "--protocol",
        choices=list(DEFAULT_URLS),
        default="grpc",
        env="EMOTRITON_PROTOCOL",
        help="wire protocol",
    )


def _default(owner: type, name: str) -> Any:
    """The default of dataclass field `name`: one source for the library and the CLI."""
    found = next(f for f in dataclasses.fields(owner) if f.name == name)
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


def _add_export(commands: argparse._SubParsersAction) -> None:
    from emoexport.options import ExportOptions

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
    add("--repository", type=Path, default=REPOSITORY, help="Triton model repository")
    add(
        "--max-length",
        type=int,
        help="truncate texts to this many tokens (default: the model's limit)",
    )
    batching = _default(ExportOptions, "batching")
    add(
        "--max-batch-size",
        type=int,
        default=batching.max_batch_size,
        help="most texts per request and per batch",
    )
    add(
        "--max-queue-delay-us",
        type=int,
        default=batching.max_queue_delay_us,
        help="dynamic batcher wait for more requests",
    )
    add(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default=_default(ExportOptions, "device"),
        help="encoder instance kind",
    )
    add(
        "--instances",
        type=int,
        default=_default(ExportOptions, "instances"),
        help="encoder instances per device",
    )
    add("--revision", help="hub revision (branch, tag or commit)")
    add("--trust-remote-code", action="store_true", help="run the model repository's own code")
    add(
        "--tolerance",
        type=float,
        default=_default(ExportOptions, "tolerance"),
        help="parity gate: max |Δprobability| vs PyTorch",
    )
    add("--overwrite", action="store_true", help="replace an earlier export of NAME")
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
        raise UsageError("export needs SOURCE and --name")
    _quiet_transformers()
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
    )
    if args.head:
        result = export_embedding_classifier(args.source, args.head, options, log=_log)
    else:
        result = export_classifier(args.source, options, log=_log)
    scheme = result.scheme
    print(
        f"exported {result.name}: {len(scheme.labels)} labels, "
        f"{scheme.activation} + {scheme.decision}, "
        f"max_length {result.max_length} → {args.repository}"
    )
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _quiet_transformers() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def _add_train_head(commands: argparse._SubParsersAction) -> None:
    from emoexport.locate import MINILM_L6
    from emotrain.settings import HeadSettings

    parser = commands.add_parser(
        "train-head",
        help="fit an ONNX head (seed 001's format) on sentence embeddings of a labelled dataset",
        description="Embed the train, validation and test splits with ENCODER (cached), fit a "
        "head, tune each label's threshold for F1 on validation, and write model.onnx, "
        "thresholds.json and metrics (JSON and Markdown, validation and test) into --out.",
    )
    add = _env_default(parser)
    add("--encoder", default=MINILM_L6, help="sentence encoder")
    add("--data", required=True, help="go_emotions or dair-ai emotion folder, or a hub dataset id")
    add("--out", type=Path, required=True, help="head folder to write")
    for name, kind, meaning in (
        ("hidden", int, "hidden units (0: a linear head)"),
        ("dropout", float, "dropout before each linear layer's input"),
        ("epochs", int, "most epochs (early stopping on validation loss)"),
        ("learning_rate", float, "AdamW learning rate"),
        ("weight_decay", float, "AdamW weight decay"),
        ("seed", int, "random seed"),
    ):
        flag = "--" + name.replace("_", "-")
        add(flag, type=kind, default=_default(HeadSettings, name), help=meaning)
    add(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "emotriton" / "embeddings",
        help="embedding cache",
    )
    add("--no-cache", action="store_true", help="embed again even if cached")
    parser.set_defaults(run=_train_head)


def _train_head(args: argparse.Namespace) -> int:
    from emotrain.head_training import HeadSettings, fit_head

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


def _add_finetune(commands: argparse._SubParsersAction) -> None:
    from emoexport.locate import MINILM_L6
    from emotrain.settings import FinetuneSettings

    parser = commands.add_parser(
        "finetune",
        help="fine-tune an encoder end to end as a sequence classifier on a labelled dataset",
        description="Fine-tune BASE as a transformers sequence classifier on the train split "
        "(multi-label with sigmoid, or single-label with softmax when every text has one label), "
        "keep the epoch with the best validation macro-F1, tune each label's threshold for F1 on "
        "validation (multi-label), and write a Hugging Face model directory with "
        "thresholds.json and metrics (JSON and Markdown, validation and test) into --out, "
        "ready for `emotriton export OUT --thresholds OUT/thresholds.json`.",
    )
    add = _env_default(parser)
    add("--base", default=MINILM_L6, help="pre-trained encoder: a directory or hub id")
    add("--data", required=True, help="go_emotions or dair-ai emotion folder, or a hub dataset id")
    add("--out", type=Path, required=True, help="model directory to write")
    for name, kind, meaning in (
        ("epochs", int, "epochs (the best on validation is kept)"),
        ("batch_size", int, "texts per training step"),
        ("encoder_learning_rate", float, "AdamW learning rate of the pre-trained encoder"),
        ("head_learning_rate", float, "AdamW learning rate of the pooler and classifier"),
        ("warmup", float, "fraction of the steps with a rising learning rate"),
        ("weight_decay", float, "AdamW weight decay"),
        ("max_length", int, "truncation, in tokens"),
        ("limit", int, "train on this many training texts, drawn at random (0: all)"),
        ("seed", int, "random seed"),
    ):
        flag = "--" + name.replace("_", "-")
        add(flag, type=kind, default=_default(FinetuneSettings, name), help=meaning)
    add(
        "--pooling",
        choices=["mean", "cls"],
        default=_default(FinetuneSettings, "pooling"),
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
    parser.set_defaults(run=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    import torch

    from emotrain.finetune import finetune
    from emotrain.settings import FinetuneSettings

    _quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)
    flags = {"half_precision": not args.full_precision, "bfloat16": not args.float32_training}
    names = {f.name for f in dataclasses.fields(FinetuneSettings)} - set(flags)
    settings = FinetuneSettings(**flags, **{name: getattr(args, name) for name in names})
    result = finetune(args.base, args.data, args.out, settings, log=_log)
    test, validation = result.test, result.validation
    print(
        f"wrote {args.out} (epoch {result.chosen_epoch}): test macro-F1 {test.macro.f1:.3f} "
        f"(validation {validation.macro.f1:.3f}), exact match {test.exact_match:.3f}; "
        f"see {args.out / 'metrics.md'}"
    )
    return 0


def _add_eval(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval",
        help="classify a labelled split through the served model and print the metrics table",
    )
    add = _env_default(parser)
    _add_connection(add)
    add("--data", required=True, help="go_emotions or dair-ai emotion folder, or a hub dataset id")
    add("--split", default="test", help="train, validation (dev) or test")
    add("--json", type=Path, help="also write the table as JSON here")
    add("--markdown", type=Path, help="also write the table as Markdown here")
    parser.set_defaults(run=_eval)


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


def _add_serve(commands: argparse._SubParsersAction) -> None:
    from emoserve.launcher import STANDARD_ENDPOINTS

    parser = commands.add_parser(
        "serve",
        help="run the local Triton server on a model repository",
        description="Run Triton 2.51 (from the nvidia-pytriton wheel) on a model repository "
        "until Ctrl-C or SIGTERM.",
    )
    add = _env_default(parser)
    add("--repository", type=Path, default=REPOSITORY, help="Triton model repository")
    add(
        "--host",
        default=STANDARD_ENDPOINTS.host,
        help="bind address (0.0.0.0 exposes the server)",
    )
    add("--http-port", type=int, default=STANDARD_ENDPOINTS.http_port, help="HTTP/REST port")
    add("--grpc-port", type=int, default=STANDARD_ENDPOINTS.grpc_port, help="gRPC port")
    add(
        "--metrics-port",
        type=int,
        default=STANDARD_ENDPOINTS.metrics_port,
        help="Prometheus metrics port",
    )
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
            raise UsageError("--grpc-tls-cert and --grpc-tls-key go together")
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
    _add_connection(add)
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
    parser.set_defaults(run=_classify)


def _threshold(values: list[str] | None) -> float | dict[str, float] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return _number("--threshold", values[0])
    pairs = [value.partition("=") for value in values]
    if any(not sep for _, sep, _ in pairs):
        raise UsageError("--threshold is one number, or LABEL=T pairs")
    return {label: _number(f"--threshold {label}", number) for label, _, number in pairs}


def _number(option: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a number") from None


def _read_texts(args: argparse.Namespace) -> list[str]:
    if args.file:
        try:
            return args.file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read --file {args.file}: {error}") from None
    if not args.texts or args.texts == ["-"]:
        return sys.stdin.read().splitlines()
    return args.texts


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


def _add_loadtest(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "loadtest",
        help="run Locust headless against a server, or a local one on a repository",
        description="Load-test a served model with Locust (single texts and batches, weighted "
        "3:1), write Locust's CSV and HTML reports into --out, and print requests/s, texts/s, "
        "latency percentiles and failures. Exits 1 if any request failed.",
    )
    add = _env_default(parser)
    _add_connection(add)
    add("--repository", type=Path, help="start a local server on this repository instead")
    add("--users", type=int, default=4, help="concurrent Locust users")
    add("--spawn-rate", type=float, default=4.0, help="users started per second")
    add("--duration", type=int, default=30, help="seconds of load")
    add("--batch-size", type=int, default=16, help="texts in a batch request")
    add("--corpus", type=Path, help="texts, one per line (default: a go_emotions sample)")
    add("--out", type=Path, default=Path("build/loadtest"), help="folder for the reports")
    parser.set_defaults(run=_loadtest)


def _loadtest(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

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
    _add_finetune(commands)
    _add_serve(commands)
    _add_classify(commands)
    _add_eval(commands)
    _add_loadtest(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 when the job ran and found failures, 2 on an error of use."""
    args = build_parser().parse_args(argv)
    try:
        for option in _ENV_OPTIONS[args.command]:
            option.resolve(args)
        return args.run(args)
    except EmotritonError as error:
        print(f"emotriton: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
