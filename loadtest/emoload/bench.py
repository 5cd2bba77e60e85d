"""`emotriton bench`: every way to run one exported model, on the same texts, back to back.

Contenders, in one process and one run, so that they share the machine's state:

- the served ensemble, one text per request at each concurrency, and in batch requests;
- in-process onnxruntime on the same exported files (emoexport.inprocess), one text at a time
  and in batches: the floor that serving adds to;
- the source model as its users run it without us: sentence-transformers `encode` on the whole
  list plus the head (encoder + head models), or the Hugging Face `pipeline` (classifiers);
- Triton's perf_analyzer on the same served ensemble and texts, at the same loads;
- infinity-emb, a peer embedding server, on the same encoder (encoder + head models), with the
  head applied in the client.

A peer that is not installed, cannot run, or answers wrongly is reported as skipped, with why.

For each served run it reads Triton's /metrics before and after, and reports per model the
texts per execution (the average batch), and the queue and compute time per request.
Benchmarks measure; nothing here asserts a timing.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import LoadTestError, PeerUnavailableError
from .served import ModelStats, counted_metrics, model_stats, read_metrics, settled_metrics

REFERENCE = "served, 32 clients x 1 text"
"""The run every other is compared with: the load the issue's targets are set at."""
JSON_API = "JSON API (/classify)"
"""The runs through the JSON API in front of the same server, named after their route."""
JSON_TYPE = "application/json"
PEERS_VENV = Path(".venv-peers")
"""Where `make bench-peers` installs perf_analyzer and infinity-emb."""
MIN_PEER_COSINE = 0.999
"""A peer's embeddings must match sentence-transformers' this closely to be compared."""
PEER_CHECK_TEXTS = 32


@dataclass(frozen=True)
class Run:
    contender: str
    texts: int
    seconds: float
    p50_ms: float | None = None  # None: one call on the whole list, no per-request latency
    p95_ms: float | None = None

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds

    @classmethod
    def of(cls, contender: str, texts: int, seconds: float, latencies_ms: list[float]) -> Run:
        return cls(contender, texts, seconds, *_percentiles(latencies_ms))


@dataclass(frozen=True)
class Beside:
    """A JSON API run, and the SDK's at the same load measured beside it."""

    sdk: Run
    json_api: Run

    @property
    def p50_ms_more(self) -> float | None:
        if self.sdk.p50_ms is None or self.json_api.p50_ms is None:
            return None
        return self.json_api.p50_ms - self.sdk.p50_ms

    @property
    def texts_per_s_ratio(self) -> float:
        return self.json_api.texts_per_s / self.sdk.texts_per_s


@dataclass
class BenchReport:
    model: str
    machine: str
    texts: int
    runs: list[Run] = field(default_factory=list)
    triton: dict[str, list[ModelStats]] = field(default_factory=dict)  # served run → models
    json_api: list[Beside] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # peer → why it was not measured

    def ratio(self, run: Run) -> float | None:
        reference = next((r for r in self.runs if r.contender == REFERENCE), None)
        return run.texts_per_s / reference.texts_per_s if reference else None

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "machine": self.machine,
            "texts": self.texts,
            "reference": REFERENCE,
            "runs": [
                {**asdict(r), "texts_per_s": r.texts_per_s, "ratio": self.ratio(r)}
                for r in self.runs
            ],
            "triton": {
                run: [{**asdict(s), "average_batch": s.average_batch} for s in stats]
                for run, stats in self.triton.items()
            },
            "json_api": [
                {
                    "sdk": asdict(beside.sdk),
                    "json_api": asdict(beside.json_api),
                    "p50_ms_more": beside.p50_ms_more,
                    "texts_per_s_ratio": beside.texts_per_s_ratio,
                }
                for beside in self.json_api
            ],
            "notes": self.notes,
            "skipped": self.skipped,
        }

    def markdown(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        lines = [
            f"`emotriton bench`: model `{self.model}`, {self.texts} texts; {self.machine}",
            "",
            f"| contender | texts/s | p50 ms | p95 ms | x {REFERENCE} |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for run in self.runs:
            ratio = self.ratio(run)
            lines.append(
                f"| {run.contender} | {run.texts_per_s:.0f} | {ms(run.p50_ms)} | "
                f"{ms(run.p95_ms)} | {'-' if ratio is None else f'{ratio:.2f}'} |"
            )
        for contender, stats in self.triton.items():
            lines += [
                "",
                f"Triton, {contender}:",
                "",
                "| model | texts per execution | queue ms/request | compute ms/request |",
                "| --- | ---: | ---: | ---: |",
            ]
            lines += [
                f"| {s.model} | {s.average_batch:.2f} | {s.queue_ms:.2f} | {s.compute_ms:.2f} |"
                for s in stats
            ]
        if self.json_api:
            lines += [
                "",
                "The JSON API beside the SDK at the same load (1 client: text by text in turn):",
                "",
                "| load | SDK texts/s | JSON API texts/s | x the SDK | SDK p50 ms "
                "| JSON API p50 ms | p50 ms more |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for beside in self.json_api:
                sdk, api, more = beside.sdk, beside.json_api, beside.p50_ms_more
                lines.append(
                    f"| {api.contender.split(', ', 1)[1]} | {sdk.texts_per_s:.0f} | "
                    f"{api.texts_per_s:.0f} | {beside.texts_per_s_ratio:.2f} | {ms(sdk.p50_ms)} | "
                    f"{ms(api.p50_ms)} | {'-' if more is None else f'{more:+.2f}'} |"
                )
        notes = [*self.notes, *(f"{peer}: skipped, {why}" for peer, why in self.skipped.items())]
        lines += ["", *(f"- {note}" for note in notes)] if notes else []
        return "\n".join(lines) + "\n"


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load} at start"


def batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


def _percentiles(latencies_ms: list[float]) -> tuple[float, float]:
    if len(latencies_ms) < 2:
        return latencies_ms[0], latencies_ms[0]
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return cuts[49], cuts[94]


Call = Callable[[list[str]], object]


def warmed(make_call: Callable[[], Call], workers: int, texts: list[str]) -> list[Call]:
    """One call per worker, each made once on `texts` (untimed)."""
    calls = [make_call() for _ in range(workers)]
    for call in calls:
        call(texts)
    return calls


def timed(contender: str, items: Sequence[list[str]], calls: Sequence[Call]) -> Run:
    """`items` (lists of texts) through one thread per call."""
    seconds, latencies = latencies_of(items, calls)
    return Run.of(contender, sum(map(len, items)), seconds, latencies)


def alternating(
    contenders: tuple[str, str], items: Sequence[list[str]], calls: tuple[Call, Call]
) -> tuple[Run, Run]:
    """One caller sending each item through both calls, which one first alternating: two runs
    taken on the same state of the machine, request by request (each run's seconds are its
    calls' own)."""
    latencies: tuple[list[float], list[float]] = ([], [])
    for index, item in enumerate(items):
        for which in (0, 1) if index % 2 == 0 else (1, 0):
            start = time.perf_counter()
            calls[which](item)
            latencies[which].append((time.perf_counter() - start) * 1e3)
    texts = sum(map(len, items))
    first, second = (
        Run.of(contender, texts, sum(ms) / 1e3, ms) for contender, ms in zip(contenders, latencies)
    )
    return first, second


def latencies_of(items: Sequence[list[str]], calls: Sequence[Call]) -> tuple[float, list[float]]:
    """`items` through one thread per call: the seconds they took, and each call's ms."""
    pending = iter(items)
    lock = threading.Lock()
    latencies: list[float] = []

    def work(call: Call) -> None:
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            start = time.perf_counter()
            call(item)
            elapsed = (time.perf_counter() - start) * 1e3
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=work, args=(call,)) for call in calls]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def whole_list(contender: str, texts: list[str], call: Call) -> Run:
    """One call on every text, after an untimed call on a few."""
    call(texts[:8])
    started = time.perf_counter()
    call(texts)
    return Run(contender, len(texts), time.perf_counter() - started)


@dataclass(frozen=True)
class BenchOptions:
    model: str
    url: str  # gRPC HOST:PORT
    metrics_url: str
    repository: Path  # the exported repository the server serves
    models: Sequence[str]  # the ensemble's composing models (composing_models), for their stats
    texts: list[str]
    concurrency: Sequence[int] = (1, 8, 32)
    batch_size: int = 32
    batch_clients: int = 4
    source: str | None = None  # the exported source model, for the in-process reference
    head: str | None = None  # its head, for encoder + head models
    perf_analyzer: Path | None = None  # the binary; None: look in PEERS_VENV, then PATH
    infinity_emb: Path | None = None  # likewise


def _served(options: BenchOptions, report: BenchReport) -> None:
    from emoclient import Client

    with ExitStack() as clients:

        def make_call() -> Call:
            client = clients.enter_context(Client(options.url))
            return lambda texts: client.classify(texts, model=options.model)

        _served_loads(options, report, make_call)


def _served_loads(
    options: BenchOptions,
    report: BenchReport,
    make_call: Callable[[], Call],
) -> None:
    singles = [[text] for text in options.texts]
    loads = [(f"served, {c} clients x 1 text", singles, c) for c in options.concurrency]
    grouped = batches(options.texts, options.batch_size)
    contender = f"served, {options.batch_clients} clients x {options.batch_size} texts"
    loads.append((contender, grouped, options.batch_clients))
    # Each call is one request to the ensemble and to each of its steps.
    models = [options.model, *options.models]
    reading = read_metrics(options.metrics_url)
    for contender, items, workers in loads:
        calls = warmed(make_call, workers, items[0])
        before = counted_metrics(
            options.metrics_url,
            reading,
            dict.fromkeys(models, workers),
            dict.fromkeys(options.models, workers * len(items[0])),
        )
        report.runs.append(timed(contender, items, calls))
        texts = sum(map(len, items))
        reading = counted_metrics(
            options.metrics_url,
            before,
            dict.fromkeys(models, len(items)),
            dict.fromkeys(options.models, texts),
        )
        report.triton[contender] = model_stats(before, reading, options.models)


def _json_api(options: BenchOptions, report: BenchReport) -> None:
    """The same single texts through the JSON API in front of the same server: what the front
    end costs a caller who does not speak tensors. Each load beside the SDK's at that load, so
    that both are taken on the same state of a shared machine: one client alternates with the
    SDK text by text, more clients run right after the SDK's. The callers are http.client
    connections, Python's leanest client: `requests` costs its caller about 0.5 ms more CPU a
    call (measured here), which is the caller's, not the front end's."""
    from emoapi.process import ApiProcess
    from emoclient import Client
    from emoserve.config import free_port

    singles = [[text] for text in options.texts]
    host, port = "127.0.0.1", free_port()
    with ApiProcess(options.url, host, port, [options.model]), ExitStack() as connections:

        def json_call() -> Call:
            connection = http.client.HTTPConnection(host, port, timeout=60)
            connections.enter_context(closing(connection))

            def classify(texts: list[str]) -> object:
                body = json.dumps({"texts": texts})
                connection.request("POST", "/classify", body, {"Content-Type": JSON_TYPE})
                answer = connection.getresponse()
                content = answer.read()
                if answer.status != 200:
                    raise LoadTestError(f"the JSON API answered {answer.status}: {content[:200]!r}")
                return json.loads(content)

            return classify

        def sdk_call() -> Call:
            client = connections.enter_context(Client(options.url))
            return lambda texts: client.classify(texts, model=options.model)

        for concurrency in options.concurrency:
            load = f"{concurrency} clients x 1 text"
            sdk_calls = warmed(sdk_call, concurrency, singles[0])
            json_calls = warmed(json_call, concurrency, singles[0])
            names = (f"SDK beside the JSON API, {load}", f"{JSON_API}, {load}")
            if concurrency == 1:
                sdk, json_api = alternating(names, singles, (sdk_calls[0], json_calls[0]))
            else:
                sdk = timed(names[0], singles, sdk_calls)
                json_api = timed(names[1], singles, json_calls)
            report.runs.append(json_api)
            report.json_api.append(Beside(sdk, json_api))


def _in_process(options: BenchOptions, report: BenchReport) -> None:
    from emoexport.inprocess import ExportedEnsemble

    ensemble = ExportedEnsemble(options.repository, options.model)
    singles = [[text] for text in options.texts]
    grouped = batches(options.texts, options.batch_size)
    for contender, items in [
        ("in-process onnxruntime, 1 text", singles),
        (f"in-process onnxruntime, batches of {options.batch_size}", grouped),
    ]:
        report.runs.append(timed(contender, items, warmed(lambda: ensemble.classify, 1, items[0])))


def _source_model(options: BenchOptions, report: BenchReport) -> None:
    """The model as its users run it without a server."""
    assert options.source is not None, "measured only with --source"
    if options.head is not None:
        from emoexport.head import load_head
        from emoexport.sentence_encoder import load_sentence_encoder

        encoder = load_sentence_encoder(options.source)
        head = load_head(options.head)

        def classify(texts: list[str]) -> object:
            embeddings = encoder.encode(texts, batch_size=options.batch_size)
            return head.positive_probabilities(embeddings)

        contender = f"sentence-transformers encode (batch {options.batch_size}) + head"
    else:
        from transformers import pipeline

        classifier = pipeline("text-classification", model=options.source, top_k=None)

        def classify(texts: list[str]) -> object:
            return classifier(texts, batch_size=options.batch_size, truncation=True)

        contender = f"transformers pipeline (batch {options.batch_size})"
    report.runs.append(whole_list(contender, options.texts, classify))


def find_peer(name: str, explicit: Path | None) -> Path:
    """The peer's executable: `explicit`, else the one `make bench-peers` installed, else the
    one on PATH."""
    if explicit is not None:
        if not explicit.is_file():
            raise PeerUnavailableError(f"no file {explicit}")
        return explicit.absolute()
    installed = PEERS_VENV / "bin" / name
    if installed.is_file():
        return installed.absolute()
    found = shutil.which(name)
    if found is None:
        raise PeerUnavailableError(f"not installed (make bench-peers installs it in {PEERS_VENV})")
    return Path(found)


def _perf_analyzer(options: BenchOptions, report: BenchReport) -> None:
    """The same loads as the served runs, generated by Triton's own tool. A load it cannot
    measure (no stable windows, failed requests) is skipped alone."""
    from .perf_analyzer import TOOL, PerfAnalyzer

    binary = find_peer(TOOL, options.perf_analyzer)
    analyzer = PerfAnalyzer(binary, options.url, options.model, options.texts)
    loads = [(c, 1) for c in options.concurrency] + [(options.batch_clients, options.batch_size)]
    for concurrency, batch_size in loads:
        contender = f"{TOOL}, {concurrency} clients x {batch_size} text" + "s" * (batch_size > 1)
        before = read_metrics(options.metrics_url)
        try:
            measurement = analyzer.measure(concurrency, batch_size)
            after = settled_metrics(options.metrics_url)
            failed = _failures(after, options.model) - _failures(before, options.model)
            if failed:
                raise PeerUnavailableError(f"{failed:.0f} of its requests failed on the server")
        except PeerUnavailableError as error:
            report.skipped[contender] = str(error)
            continue
        texts = measurement.requests * batch_size
        seconds = texts / measurement.texts_per_s
        report.runs.append(Run(contender, texts, seconds, measurement.p50_ms, measurement.p95_ms))


def _failures(metrics: dict[tuple[str, str], float], model: str) -> float:
    return metrics.get(("nv_inference_request_failure", model), 0.0)


def _infinity(options: BenchOptions, report: BenchReport) -> None:
    """infinity-emb's embeddings, and the head on them in the client: the whole classification,
    as a user of infinity would assemble it."""
    if options.source is None or options.head is None:
        raise PeerUnavailableError("it serves embeddings: it needs an encoder + head model")
    from emoexport.head import load_head
    from emoexport.locate import locate
    from emoexport.sentence_encoder import load_sentence_encoder
    from emoserve.config import free_port

    from .infinity import TOOL, EmbeddingClient, export_model, min_cosine, serving

    binary = find_peer(TOOL, options.infinity_emb)
    head = load_head(options.head)
    sample = options.texts[:PEER_CHECK_TEXTS]
    reference = load_sentence_encoder(options.source).encode(sample)
    singles = [[text] for text in options.texts]
    with tempfile.TemporaryDirectory(prefix="emotriton-infinity-") as folder:
        model = export_model(binary, Path(locate(options.source)), Path(folder) / "model")
        log = Path(folder) / "infinity.log"
        with serving(binary, model, free_port(), log) as address, ExitStack() as clients:
            checker = clients.enter_context(closing(EmbeddingClient(address)))
            cosine = min_cosine(checker.embed(sample), reference)
            if cosine < MIN_PEER_COSINE:
                raise PeerUnavailableError(
                    f"its embeddings differ from sentence-transformers' (min cosine {cosine:.4f})"
                )
            report.notes.append(
                f"{TOOL}: embeddings match sentence-transformers' on {len(sample)} texts "
                f"(min cosine {cosine:.6f}); it tokenises, encodes, pools and normalises, and "
                "answers JSON; the head runs in the client, in onnxruntime"
            )

            def make_call() -> Call:
                client = clients.enter_context(closing(EmbeddingClient(address)))
                return lambda texts: head.positive_probabilities(client.embed(texts))

            for concurrency in options.concurrency:
                contender = f"{TOOL} (optimum) + head, {concurrency} clients x 1 text"
                calls = warmed(make_call, concurrency, singles[0])
                report.runs.append(timed(contender, singles, calls))


def _peer(name: str, measure: Callable[[], None], report: BenchReport) -> None:
    """A peer's runs, or why there are none."""
    try:
        measure()
    except PeerUnavailableError as error:
        report.skipped[name] = str(error)


def run_bench(options: BenchOptions, log: Callable[[str], None] = print) -> BenchReport:
    report = BenchReport(options.model, machine(), len(options.texts))
    log("served ensemble")
    _served(options, report)
    log("JSON API")
    _json_api(options, report)
    log("perf_analyzer")
    _peer("perf_analyzer", lambda: _perf_analyzer(options, report), report)
    log("in-process onnxruntime")
    _in_process(options, report)
    if options.source is not None:
        log(f"source model {options.source}")
        _source_model(options, report)
    else:
        report.notes.append("no --source: the source model was not measured")
    log("infinity-emb")
    _peer("infinity_emb", lambda: _infinity(options, report), report)
    return report


def plot(report: BenchReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    runs = report.runs
    figure, axes = pyplot.subplots(figsize=(9, 0.45 * len(runs) + 1.5))
    colors = ["tab:blue" if r.contender.startswith("served") else "tab:gray" for r in runs]
    axes.barh([r.contender for r in runs], [r.texts_per_s for r in runs], color=colors)
    for index, run in enumerate(runs):
        label = f" {run.texts_per_s:.0f}" + (
            "" if run.p50_ms is None else f"  (p50 {run.p50_ms:.1f} ms)"
        )
        axes.text(run.texts_per_s, index, label, va="center", fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("texts/s")
    axes.set_title(f"{report.model}: {report.texts} texts; {report.machine}", fontsize=9)
    axes.margins(x=0.25)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return path


def write(report: BenchReport, out: Path) -> list[Path]:
    """bench.json, bench.md, and bench.png when matplotlib is installed, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("matplotlib") is None:
        report.notes.append(
            "no plot: matplotlib is not installed (pip install 'emotriton[loadtest]')"
        )
    written = [out / "bench.json", out / "bench.md"]
    written[0].write_text(json.dumps(report.to_json(), indent=2) + "\n")
    written[1].write_text(report.markdown())
    if importlib.util.find_spec("matplotlib") is not None:
        written.append(plot(report, out / "bench.png"))
    return written
