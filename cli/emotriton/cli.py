"""Export a Hugging Face classifier to Triton, serve a model repository, classify texts.

Every option can also be set by an environment variable, named in its help text and read only by
the command that runs. Subcommands import their heavy dependencies only when they run, so
`classify` works with the SDK alone.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emoclient import DEFAULT_URLS, EmotritonError


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


Add = Callable[..., argparse.Action]


def _env_default(parser: argparse.ArgumentParser) -> Add:
    """`add_argument` for options that EMOTRITON_<COMMAND>_<OPTION> may also set (`env` names
    another variable, for options that several commands share)."""
    command = parser.prog.split()[-1]
    registered = _ENV_OPTIONS[command] = []
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


def _add_connection(add: Add) -> None:
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


def _export_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoexport.options import Batching, ExportOptions

    parser.add_argument("source", nargs="?", help="hub id (owner/model) or local model directory")
    parser.add_argument("--list-recipes", action="store_true", help="show the recipes and exit")
    add("--name", help="ensemble name clients call (required)")
    add("--head", help="ONNX head folder or hub id (seed 001's format, with thresholds.json)")
    add("--repository", type=Path, default=REPOSITORY, help="Triton model repository")
    _add_fields(add, ExportOptions)
    _add_fields(add, Batching)
    add(
        "--no-fusion",
        action="store_true",
        help="serve the encoder graph as exported, without onnxruntime's transformer fusions",
    )
    add(
        "--calibration-data",
        help="int8/fp16: a labelled go_emotions or dair-ai emotion folder (or hub id); its test "
        "split's macro-F1 is measured at fp32 and at the chosen precision",
    )


def _export(args: argparse.Namespace) -> int:
    from emoexport.exporter import export_classifier, export_embedding_classifier
    from emoexport.options import Batching, ExportOptions
    from emoexport.recipes import RECIPES

    if args.list_recipes:
        for recipe in RECIPES:
            print(f"{recipe.name:22s} {recipe.description}")
        return 0
    if not args.source or not args.name:
        raise UsageError("export needs SOURCE and --name")
    _quiet_transformers()
    quality_check = None
    if args.calibration_data:
        from emotrain.datasets import load_split
        from emotrain.evaluation import SplitQualityCheck

        quality_check = SplitQualityCheck(load_split(args.calibration_data, "test"))
    options = _from_options(
        ExportOptions,
        args,
        batching=_from_options(Batching, args),
        fuse=not args.no_fusion,
        quality_check=quality_check,
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


def _add_fields(add: Add, settings: type) -> None:
    """An option for each field of a library dataclass that declares one (emoexport.options.
    option): its default is the field's, its help and type the field's metadata."""
    for each in dataclasses.fields(settings):
        if "help" in each.metadata:
            add("--" + each.name.replace("_", "-"), default=each.default, **each.metadata)


def _add_training(add: Add, written: str, settings: type) -> None:
    """--data and --out, and the options of a training settings dataclass."""
    add("--data", required=True, help="go_emotions or dair-ai emotion folder, or a hub dataset id")
    add("--out", type=Path, required=True, help=written)
    _add_fields(add, settings)


def _wrote(out: Path, result: Any, detail: str = "") -> int:
    """Say what a training command wrote and how it scores (validation-tuned thresholds)."""
    test, validation = result.test, result.validation
    print(
        f"wrote {out}{detail}: test macro-F1 {test.macro.f1:.3f} "
        f"(validation {validation.macro.f1:.3f}), weighted F1 {test.weighted.f1:.3f}, "
        f"exact match {test.exact_match:.3f}; see {out / 'metrics.md'}"
    )
    return 0


def _from_options(settings: type, args: argparse.Namespace, **others: Any) -> Any:
    """A dataclass of the library's from the options named as its fields (a field with no
    option keeps its default), and `others`."""
    names = {f.name for f in dataclasses.fields(settings)} - set(others)
    return settings(**others, **{name: getattr(args, name) for name in names if name in args})


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
    from emotrain.head_training import HeadSettings, fit_head

    _quiet_transformers()
    settings = _from_options(HeadSettings, args)
    cache = None if args.no_cache else args.cache_dir
    result = fit_head(args.encoder, args.data, args.out, settings, cache, log=_log)
    return _wrote(args.out, result)


def _finetune_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoexport.locate import MINILM_L6
    from emotrain.settings import FinetuneSettings

    add("--base", default=MINILM_L6, help="pre-trained encoder: a directory or hub id")
    _add_training(add, "model directory to write", FinetuneSettings)
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


def _finetune(args: argparse.Namespace) -> int:
    import torch

    from emotrain.finetune import finetune
    from emotrain.settings import FinetuneSettings

    _quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = _from_options(
        FinetuneSettings,
        args,
        half_precision=not args.full_precision,
        bfloat16=not args.float32_training,
    )
    result = finetune(args.base, args.data, args.out, settings, log=_log)
    return _wrote(args.out, result, f" (epoch {result.chosen_epoch})")


def _eval_options(parser: argparse.ArgumentParser, add: Add) -> None:
    _add_connection(add)
    add("--data", required=True, help="go_emotions or dair-ai emotion folder, or a hub dataset id")
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


def _serve_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoserve.launcher import STANDARD_ENDPOINTS

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
    add(
        "--triton-home",
        type=Path,
        help="an installed Triton to run, such as /opt/tritonserver in NGC images "
        "(default: the nvidia-pytriton wheel's)",
    )
    add(
        "--no-http-guard",
        action="store_true",
        help="let Triton serve --http-port and --metrics-port itself, without the guards that "
        "refuse the form bodies which crash it: only behind a proxy that refuses them "
        "(deploy/proxy/nginx.conf in compose and Kubernetes)",
    )


def _serve(args: argparse.Namespace) -> int:
    """The admin key comes from EMOTRITON_ADMIN_KEY only (never the command line, which `ps`
    shows); unset, a random key that nobody else knows locks the admin APIs."""
    import logging

    from emoclient import Client
    from emoserve import ADMIN_HEADER, ADMIN_KEY_VARIABLE, GrpcTls, LocalServer

    tls = None
    if args.grpc_tls_cert or args.grpc_tls_key:
        if not (args.grpc_tls_cert and args.grpc_tls_key):
            raise UsageError("--grpc-tls-cert and --grpc-tls-key go together")
        tls = GrpcTls(args.grpc_tls_cert, args.grpc_tls_key, args.grpc_tls_client_ca)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    logging.basicConfig(format="emotriton: %(message)s")
    server = LocalServer(
        args.repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
        stream_logs=True,
        grpc_tls=tls,
        triton_home=args.triton_home,
        http_guard=not args.no_http_guard,
    )
    try:
        server.start()
        endpoints = server.endpoints
        admin = {ADMIN_HEADER: server.admin_key}
        with Client(endpoints.http_url, protocol="http", headers=admin) as client:
            names = [info.name for info in client.models()]
        key = "from " + ADMIN_KEY_VARIABLE if os.environ.get(ADMIN_KEY_VARIABLE) else "random"
        print(
            f"\nemotriton: serving {', '.join(names) or 'no emotion models'} "
            f"from {server.repository}\n"
            f"  gRPC    {endpoints.grpc_url}\n  HTTP    http://{endpoints.http_url}\n"
            f"  metrics {endpoints.metrics_url}\n"
            f"  admin APIs need the header {ADMIN_HEADER} ({key} key)\nCtrl-C stops it.",
            flush=True,
        )
        code = server.wait()
        print(f"emotriton: tritonserver kept failing to start (exit code {code})", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        print("\nemotriton: stopping", file=sys.stderr)
        return 0
    finally:
        server.stop()


def _classify_options(parser: argparse.ArgumentParser, add: Add) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT")
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


def _loadtest_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoload.runner import LoadTest

    _add_connection(add)
    add("--repository", type=Path, help="start a local server on this repository instead")
    add("--duration", type=int, default=_default(LoadTest, "seconds"), help="seconds per run")
    _add_fields(add, LoadTest)


def _loadtest(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from emoload.runner import LoadTest
    from emoload.summary import LoadSummary

    test = _from_options(LoadTest, args, users=tuple(args.users), seconds=args.duration)
    test.check()  # before a local server starts

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def report(step: LoadSummary) -> None:
        print(f"{args.protocol} {step.users} users: {step}", flush=True)

    signal.signal(signal.SIGTERM, terminate)
    try:
        local = None
        if args.repository:
            from emoserve import LocalServer

            local = LocalServer(args.repository)
        with local or nullcontext():
            if local is not None:
                endpoints = local.endpoints
                url = endpoints.grpc_url if args.protocol == "grpc" else endpoints.http_url
            else:
                url = args.url or DEFAULT_URLS[args.protocol]
            steps = test.run(url, progress=report)
    except KeyboardInterrupt:
        print("emotriton: loadtest interrupted", file=sys.stderr)
        return 130
    folders = ", ".join(str(test.folder(step.users)) for step in steps)
    print(f"reports (report.html, locust_stats.csv): {folders}; plot: {test.plot_path}")
    return 1 if any(step.failed for step in steps) else 0


def _add_measured_server(add: Add) -> None:
    """The served ensemble a measurement drives, and the server: --url's, or a local one."""
    add("--model", required="EMOTRITON_MODEL" not in os.environ, help="served ensemble name")
    add("--repository", type=Path, required=True, help="the exported model repository")
    add("--url", help="gRPC HOST:PORT of a server on it (default: start a local one)")
    add("--metrics-url", help="its metrics (default: http://HOST:8002/metrics of --url)")


@contextlib.contextmanager
def _measured_server(args: argparse.Namespace) -> Iterator[tuple[str, str, str | None]]:
    """(gRPC URL, metrics URL, admin key) of --url's server, or of a local one on --repository
    for the length of the block."""
    from emoserve import ADMIN_KEY_VARIABLE, LocalServer

    if args.url is not None:
        host = args.url.rsplit(":", 1)[0]
        metrics_url = args.metrics_url or f"http://{host}:8002/metrics"
        yield args.url, metrics_url, os.environ.get(ADMIN_KEY_VARIABLE)
        return
    with LocalServer(args.repository) as local:
        endpoints = local.endpoints
        yield endpoints.grpc_url, args.metrics_url or endpoints.metrics_url, local.admin_key


def _bench_options(parser: argparse.ArgumentParser, add: Add) -> None:
    _add_measured_server(add)
    add("--source", help="the model exported, to measure it in-process the way users run it")
    add("--head", help="the head exported with --source (encoder + head models)")
    add("--data", type=Path, help="go_emotions folder or TSV (default: the loadtest corpus)")
    add("--texts", type=int, default=1000, help="how many texts every contender classifies")
    add("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="served client counts")
    add("--batch-size", type=int, default=32, help="texts per batch")
    add("--out", type=Path, default=Path("build/bench"), help="folder for the reports")
    peers = "the peer's executable (default: .venv-peers/bin, then PATH; skipped if none)"
    add("--perf-analyzer", type=Path, help=peers)
    add("--infinity-emb", type=Path, help=peers)


def _bench(args: argparse.Namespace) -> int:
    from emoload.bench import BenchOptions, composing_models, read_texts, run_bench, write

    _quiet_transformers()
    models = composing_models(args.repository, args.model)  # before a server starts
    with _measured_server(args) as (url, metrics_url, admin_key):
        options = BenchOptions(
            model=args.model,
            url=url,
            metrics_url=metrics_url,
            repository=args.repository,
            models=models,
            texts=read_texts(args.data, args.texts),
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            source=args.source,
            head=args.head,
            admin_key=admin_key,
            perf_analyzer=args.perf_analyzer,
            infinity_emb=args.infinity_emb,
        )
        report = run_bench(options, log=_log)
    written = write(report, args.out)
    print(report.markdown())
    print("reports: " + ", ".join(str(path) for path in written))
    return 0


def _overload_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoload.overload import OverloadOptions

    _add_measured_server(add)
    add("--data", type=Path, help="go_emotions folder or TSV (default: the loadtest corpus)")
    add("--out", type=Path, default=Path("build/overload"), help="folder for the report")
    _add_fields(add, OverloadOptions)


def _overload(args: argparse.Namespace) -> int:
    from emoload.bench import composing_models, read_texts
    from emoload.overload import OverloadOptions, run_overload

    # Checked before a local server starts; the server's URLs are filled in once it runs.
    options = _from_options(
        OverloadOptions,
        args,
        url="",
        metrics_url="",
        models=composing_models(args.repository, args.model),
        texts=read_texts(args.data, 10_000),
    )
    with _measured_server(args) as (url, metrics_url, _):
        options = dataclasses.replace(options, url=url, metrics_url=metrics_url)
        report = run_overload(options, log=_log)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overload.json").write_text(report.to_json())
    (args.out / "overload.md").write_text(report.to_markdown() + "\n")
    print(report.to_markdown())
    print(f"reports: {args.out / 'overload.json'}, {args.out / 'overload.md'}")
    return 0


@dataclass(frozen=True)
class _Command:
    """A subcommand: its name, what it says in --help, its options and what it runs."""

    name: str
    options: Callable[[argparse.ArgumentParser, Add], None]
    run: Callable[[argparse.Namespace], int]
    help: str
    description: str | None = None  # --help's paragraph; the help line when None


COMMANDS = (
    _Command(
        "export",
        _export_options,
        _export,
        help="export a Hugging Face classifier into a Triton ensemble",
        description="Export SOURCE (a hub id or a local directory) as ensemble NAME: "
        "NAME_tokenizer → NAME_encoder → NAME_postprocess. With --head, SOURCE is a "
        "sentence-transformers encoder and NAME_head sits between the encoder and the "
        "postprocess. Nothing is written unless the exported pipeline matches PyTorch within "
        "the tolerance.",
    ),
    _Command(
        "train-head",
        _train_head_options,
        _train_head,
        help="fit an ONNX head (seed 001's format) on sentence embeddings of a labelled dataset",
        description="Embed the train, validation and test splits with ENCODER (cached), fit a "
        "head, tune each label's threshold for F1 on validation, and write model.onnx, "
        "thresholds.json and metrics (JSON and Markdown, validation and test) into --out.",
    ),
    _Command(
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
    _Command(
        "eval",
        _eval_options,
        _eval,
        help="classify a labelled split through the served model and print the metrics table",
    ),
    _Command(
        "serve",
        _serve_options,
        _serve,
        help="run the local Triton server on a model repository",
        description="Run Triton 2.51 (from the nvidia-pytriton wheel) on a model repository "
        "until Ctrl-C or SIGTERM.",
    ),
    _Command(
        "classify",
        _classify_options,
        _classify,
        help="classify texts with a served model",
        description="Classify TEXTs, or one text per line of --file or of standard input "
        "(no TEXT, or '-'). Prints one JSON object per text, or a table.",
    ),
    _Command(
        "loadtest",
        _loadtest_options,
        _loadtest,
        help="run Locust headless against a server, or a local one on a repository",
        description="Load-test a served model with Locust (single texts and batches, weighted "
        "3:1), once per number of --users. Each run writes Locust's CSV and HTML reports into "
        "--out/users-N and prints requests/s, texts/s, latency percentiles and failures; "
        "--out/loadtest.png plots them against users. Exits 1 if any request failed, 2 if the "
        "test cannot run (no server, model not served, no corpus).",
    ),
    _Command(
        "overload",
        _overload_options,
        _overload,
        help="send more requests than a server can serve, and account for each one",
        description="Measure the served ensemble's capacity with closed-loop clients, then "
        "send single-text requests open-loop at --multiple times it (or --rate) for --duration "
        "seconds, each with a deadline of --timeout and no retry, whether or not earlier ones "
        "were answered. Reports how many were served (p50, p99, max latency), shed as "
        "overloaded (how fast), timed out or failed, and how many texts each model computed "
        "for callers that had gone; writes overload.json and overload.md into --out.",
    ),
    _Command(
        "bench",
        _bench_options,
        _bench,
        help="compare the served ensemble with running the same model in-process",
        description="One run, every contender on the same texts, back to back: the served "
        "ensemble at several concurrencies and in batches, in-process onnxruntime on the same "
        "exported files, the source model as its users run it (--source), and, when they are "
        "installed (make bench-peers), Triton's perf_analyzer on the same served ensemble and "
        "infinity-emb on the same encoder (--source with --head). Writes bench.json, bench.md "
        "and bench.png into --out, with Triton's per-model average batch, queue and compute "
        "time. With --url, perf_analyzer reads the server's statistics with the admin key in "
        "EMOTRITON_ADMIN_KEY.",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotriton", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for command in COMMANDS:
        subparser = commands.add_parser(
            command.name, help=command.help, description=command.description or command.help
        )
        command.options(subparser, _env_default(subparser))
        subparser.set_defaults(run=command.run)
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, completed from the running command's environment variables."""
    args = build_parser().parse_args(argv)
    for option in _ENV_OPTIONS[args.command]:
        option.resolve(args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 when the job ran and found failures, 2 on an error of use."""
    try:
        args = parse(argv)
        return args.run(args)
    except EmotritonError as error:
        print(f"emotriton: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
