"""`emotriton loadtest`, `bench` and `overload`: measure a served model."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emoclient import DEFAULT_URLS

from ..settings import (
    URL_VARIABLE,
    Add,
    UsageError,
    add_connection,
    add_fields,
    add_model,
    from_options,
)
from . import Command, log, quiet_transformers, stop_on_sigterm


def _loadtest_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoload.runner import LoadTest

    from ..settings import default_of

    add_connection(add)
    add("--repository", type=Path, help="start a local server on this repository instead")
    add("--duration", type=int, default=default_of(LoadTest, "seconds"), help="seconds per run")
    add_fields(add, LoadTest)


def _loadtest(args: argparse.Namespace) -> int:
    from emoload.runner import LoadTest
    from emoload.summary import LoadSummary

    test = from_options(LoadTest, args, users=tuple(args.users), seconds=args.duration)
    test.check()  # before a local server starts

    def report(step: LoadSummary) -> None:
        print(f"{args.protocol} {step.users} users: {step}", flush=True)

    stop_on_sigterm()
    try:
        with contextlib.ExitStack() as stack:
            url = args.url or DEFAULT_URLS[args.protocol]
            if args.repository:
                from emoserve import LocalServer

                endpoints = stack.enter_context(LocalServer(args.repository)).endpoints
                url = endpoints.grpc_url if args.protocol == "grpc" else endpoints.http_url
            steps = test.run(url, progress=report)
    except KeyboardInterrupt:
        print("emotriton: loadtest interrupted", file=sys.stderr)
        return 130
    folders = ", ".join(str(test.folder(step.users)) for step in steps)
    print(f"reports (report.html, locust_stats.csv): {folders}; plot: {test.plot_path}")
    return 1 if any(step.failed for step in steps) else 0


def _add_measured_server(add: Add) -> None:
    """The served ensemble a measurement drives, and the server: --url's, or a local one."""
    add_model(add)
    add("--repository", type=Path, required=True, help="the exported model repository")
    add(
        "--url",
        env=URL_VARIABLE,
        help="gRPC HOST:PORT of a server on it (default: start a local one)",
    )
    add("--metrics-url", help="its metrics (default: http://HOST:8002/metrics of --url)")


@contextlib.contextmanager
def _measured_server(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(gRPC URL, metrics URL) of --url's server, or of a local one on --repository for the
    length of the block."""
    from emoserve import LocalServer

    if args.url is not None:
        host = args.url.rsplit(":", 1)[0]
        yield args.url, args.metrics_url or f"http://{host}:8002/metrics"
        return
    with LocalServer(args.repository) as local:
        endpoints = local.endpoints
        yield endpoints.grpc_url, args.metrics_url or endpoints.metrics_url


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
    from emoload.mix import MixOptions
    from emoload.repeats import RepeatsOptions

    add("--mix", action="store_true", help="measure interactive clients beside a bulk call")
    add_fields(add, MixOptions)
    add(
        "--repeats",
        action="store_true",
        help="measure traffic that repeats itself, with and without the response cache",
    )
    add_fields(add, RepeatsOptions)


def _bench(args: argparse.Namespace) -> int:
    if args.mix and args.repeats:
        raise UsageError("--mix and --repeats are measured one at a time")
    if args.mix:
        return _mix(args)
    if args.repeats:
        return _repeats(args)
    from emoload.bench import BenchOptions, run_bench, write
    from emoload.corpus import read_texts
    from emoload.served import composing_models

    models = composing_models(args.repository, args.model)  # before a server starts
    quiet_transformers()
    with _measured_server(args) as (url, metrics_url):
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
            perf_analyzer=args.perf_analyzer,
            infinity_emb=args.infinity_emb,
        )
        report = run_bench(options, log=log)
    written = write(report, args.out)
    print(report.markdown())
    print("reports: " + ", ".join(str(path) for path in written))
    return 0


def _mix(args: argparse.Namespace) -> int:
    from emoload.corpus import read_texts
    from emoload.mix import MixOptions, plot, run_mix

    options = from_options(MixOptions, args, url="", texts=())
    texts = read_texts(args.data, sys.maxsize)  # the mixed phase's clients take what is left
    with _measured_server(args) as (url, _):
        options = dataclasses.replace(options, url=url, texts=texts)
        report = run_mix(options, log=log)
    _write_report(args.out, "mix", report, plot)
    return 0


def _repeats(args: argparse.Namespace) -> int:
    from emoload.corpus import read_texts
    from emoload.repeats import RepeatsOptions, plot, run_repeats

    if args.url is not None:
        raise UsageError("--repeats starts local servers of its own on --repository: no --url")
    options = from_options(
        RepeatsOptions, args, repository=args.repository, texts=read_texts(args.data, args.texts)
    )
    report = run_repeats(options, log=log)
    _write_report(args.out, "repeats", report, plot)
    return 0


def _write_report(out: Path, stem: str, report: Any, plot: Callable[[Any, Path], Path]) -> None:
    """`report` (to_json, to_markdown) as `stem`.json, .md, and .png where matplotlib is
    installed, in `out`; its table printed."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{stem}.json", out / f"{stem}.md"]
    markdown = report.to_markdown()
    written[0].write_text(report.to_json() + "\n")
    written[1].write_text(markdown)
    if importlib.util.find_spec("matplotlib") is not None:
        written.append(plot(report, out / f"{stem}.png"))
    print(markdown)
    print("reports: " + ", ".join(str(path) for path in written))


def _overload_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoload.overload import OverloadOptions

    _add_measured_server(add)
    add("--data", type=Path, help="go_emotions folder or TSV (default: the loadtest corpus)")
    add("--out", type=Path, default=Path("build/overload"), help="folder for the report")
    add_fields(add, OverloadOptions)


def _overload(args: argparse.Namespace) -> int:
    from emoload.corpus import read_texts
    from emoload.overload import OverloadOptions, run_overload
    from emoload.served import composing_models

    # Checked before a local server starts; the server's URLs are filled in once it runs.
    options = from_options(
        OverloadOptions,
        args,
        url="",
        metrics_url="",
        models=composing_models(args.repository, args.model),
        texts=read_texts(args.data, 10_000),
    )
    with _measured_server(args) as (url, metrics_url):
        options = dataclasses.replace(options, url=url, metrics_url=metrics_url)
        report = run_overload(options, log=log)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overload.json").write_text(report.to_json())
    (args.out / "overload.md").write_text(report.to_markdown() + "\n")
    print(report.to_markdown())
    print(f"reports: {args.out / 'overload.json'}, {args.out / 'overload.md'}")
    return 0


COMMANDS = (
    Command(
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
    Command(
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
    Command(
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
        "time. --mix instead measures interactive clients beside a bulk call, and each alone "
        "(mix.*); --repeats, served texts/s on a replay with repeats and on one without, on a "
        "local server without a response cache and on one with (repeats.*).",
    ),
)
