"""Hugging Face models → one Triton ensemble per model.

- A sequence classifier: tokenizer → encoder (logits) → postprocess.
- A sentence encoder with an ONNX head: tokenizer → encoder (sentence embedding) → head
  (one (neg, pos) pair per label) → postprocess.

Both expose the same contract to clients (emoclient.protocol). Nothing is written until the
parity gate passes; then the model folders replace any previous export of the same name together.

The encoder graph goes through, in order: transformer fusions (kept when the parity gate still
passes on the fused graph), the parity gate at fp32, then the precision it is served in (int8,
fp16) with its quality gate when labelled data is given.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol

from . import configs
from .configs import Step, TensorSpec
from .errors import ExportError, ParityError
from .head import Head, load_head
from .inprocess import InProcessPipeline
from .labels import LabelScheme
from .onnx_export import LogitsModel, export_onnx
from .optimize import fuse_transformer
from .parity import (
    DEFAULT_TOLERANCE,
    ParityReport,
    check_embedding_parity,
    check_parity,
    sample_texts,
)
from .precision import Precision, convert
from .quality import DEFAULT_MAX_METRIC_DROP, QualityCheck, QualityReport, gate
from .sentence_encoder import EMBEDDING_OUTPUT, EmbeddingModel, load_sentence_encoder
from .source import load_classifier
from .triton_models import postprocess as postprocess_source
from .triton_models import tokenizer as tokenizer_source
from .triton_models.tokenizer import load_tokenizer

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
Log = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    name: str
    repository: Path
    max_length: int | None = None
    batching: configs.Batching = field(default_factory=configs.Batching)
    device: configs.Device = "auto"
    instances: int = 1
    revision: str | None = None
    trust_remote_code: bool = False
    recipe: str | None = None  # None: chosen from the model's config
    thresholds: str | None = None  # a number, a JSON file, or a recipe's profile name
    logits_output: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    overwrite: bool = False
    fuse: bool = True  # transformer fusions, kept when they keep parity
    precision: Precision = "fp32"
    quality_check: QualityCheck | None = None  # int8/fp16: labelled texts to gate on
    max_metric_drop: float = DEFAULT_MAX_METRIC_DROP
    accelerator: configs.Accelerator = "none"
    tensorrt_cache: str = "/tmp/emotriton-tensorrt"  # on the server; one folder per model inside


@dataclass(frozen=True)
class ExportResult:
    name: str
    models: tuple[Path, ...]
    scheme: LabelScheme
    max_length: int
    parity: ParityReport  # of the fp32 graph
    precision: Precision = "fp32"
    fusions: dict[str, int] = field(default_factory=dict)  # empty: the graph as exported
    quality: QualityReport | None = None  # None: no quality gate ran


@dataclass(frozen=True)
class ModelFolder:
    """One Triton model to write: its config, and files placed in version folder 1."""

    name: str
    config: mc.ModelConfig
    files: dict[str, Path] = field(default_factory=dict)


# Every model folder an export of NAME may write, besides NAME itself: all are replaced together.
PARTS = ("tokenizer", "encoder", "head", "postprocess")


def install(
    folders: list[ModelFolder], repository: Path, name: str, overwrite: bool
) -> tuple[Path, ...]:
    """Write the folders into a staging area, then move them into the repository together,
    removing whatever an earlier export of `name` left (a head it no longer has, say)."""
    repository.mkdir(parents=True, exist_ok=True)
    previous = [
        n for n in (name, *(f"{name}_{part}" for part in PARTS)) if (repository / n).exists()
    ]
    if previous and not overwrite:
        raise ExportError(
            f"{', '.join(previous)} already in {repository}; pass --overwrite to replace"
        )
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=repository))
    try:
        for folder in folders:
            version = staging / folder.name / "1"
            version.mkdir(parents=True)
            configs.write(folder.config, staging / folder.name)
            for filename, source in folder.files.items():
                shutil.copyfile(source, version / filename)
        for stale in previous:
            shutil.rmtree(repository / stale)
        for folder in folders:
            (staging / folder.name).rename(repository / folder.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tuple(repository / folder.name for folder in folders)


class _Ensemble:
    """Builds the model folders of ensemble `options.name` from the parts an export supplies."""

    def __init__(self, options: ExportOptions, work: Path) -> None:
        self.options = options
        self.work = work
        self.folders: list[ModelFolder] = []
        self.steps: list[Step] = []

    def name(self, part: str) -> str:
        return f"{self.options.name}_{part}"

    def tokenizer(self, hf_tokenizer, input_names: Sequence[str], max_length: int) -> Path:
        """The tokenizer model; returns its tokenizer.json, which the parity gate loads."""
        path = self.work / "tokenizer.json"
        hf_tokenizer.backend_tokenizer.save(str(path))
        config = configs.tokenizer_config(
            self.name("tokenizer"),
            input_names,
            max_length=max_length,
            pad_token=hf_tokenizer.pad_token,
            pad_id=hf_tokenizer.pad_token_id,
            batching=self.options.batching,
        )
        files = {"model.py": Path(tokenizer_source.__file__), "tokenizer.json": path}
        self._add(config, files, {protocol.TEXT_INPUT: protocol.TEXT_INPUT}, _same(input_names))
        return path

    def encoder(
        self,
        hf_tokenizer,
        input_names: Sequence[str],
        max_length: int,
        module: torch.nn.Module,
        output: TensorSpec,
        log: Log,
    ) -> tuple[Path, Path]:
        """The tokenizer model, and the encoder graph as exported; returns their tokenizer.json
        and model.onnx, which the gates check before the encoder model is added."""
        tokenizer_json = self.tokenizer(hf_tokenizer, input_names, max_length)
        onnx_path = self.work / "model.onnx"
        log(f"exporting ONNX (inputs: {', '.join(input_names)})")
        sample = _trace_sample(hf_tokenizer, input_names, max_length)
        export_onnx(module, sample, onnx_path, output.name)
        return tokenizer_json, onnx_path

    def encoder_model(
        self, onnx_path: Path, input_names: Sequence[str], output: TensorSpec, max_length: int
    ) -> None:
        """The encoder model serving `onnx_path`, on TensorRT when the options say so."""
        tensorrt = None
        if self.options.accelerator == "tensorrt":
            tensorrt = configs.TensorRT(
                fp16=self.options.precision == "fp16",
                max_length=max_length,
                cache_path=f"{self.options.tensorrt_cache}/{self.name('encoder')}",
            )
        inputs = [TensorSpec(name, mc.TYPE_INT64, [-1]) for name in input_names]
        self.onnx_model(
            "encoder",
            onnx_path,
            inputs,
            [output],
            _same(input_names),
            _same([output.name]),
            tensorrt=tensorrt,
        )

    def onnx_model(
        self,
        part: str,
        onnx_path: Path,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        input_map: dict[str, str],
        output_map: dict[str, str],
        tensorrt: configs.TensorRT | None = None,
    ) -> None:
        config = configs.onnx_config(
            self.name(part),
            inputs,
            outputs,
            batching=self.options.batching,
            device=self.options.device,
            instances=self.options.instances,
            tensorrt=tensorrt,
        )
        self._add(config, {"model.onnx": onnx_path}, input_map, output_map)

    def finish(
        self,
        scheme: LabelScheme,
        postprocess_inputs: Sequence[TensorSpec],
        input_map: dict[str, str],
        layout: str,
        max_length: int,
    ) -> list[ModelFolder]:
        """Add the postprocess and the ensemble itself; the folders to install."""
        num_labels = len(scheme.labels)
        config = configs.postprocess_config(
            self.name("postprocess"),
            postprocess_inputs,
            num_labels,
            {**scheme.parameters(), "input_layout": layout},
            batching=self.options.batching,
        )
        outputs = _same([protocol.SCORES_OUTPUT, protocol.PREDICTED_OUTPUT])
        self._add(config, {"model.py": Path(postprocess_source.__file__)}, input_map, outputs)
        published = {**scheme.parameters(), protocol.PARAM_MAX_LENGTH: str(max_length)}
        ensemble = configs.ensemble_config(
            self.options.name,
            self.steps,
            num_labels,
            published,
            batching=self.options.batching,
        )
        return [*self.folders, ModelFolder(self.options.name, ensemble)]

    def _add(
        self,
        config: mc.ModelConfig,
        files: dict[str, Path],
        input_map: dict[str, str],
        output_map: dict[str, str],
    ) -> None:
        self.folders.append(ModelFolder(config.name, config, files))
        self.steps.append(Step(config.name, input_map, output_map))


def _check_options(options: ExportOptions) -> None:
    if not _NAME.match(options.name):
        raise ExportError(f"model name {options.name!r}: use letters, digits, '_', '-' and '.'")
    refusals = {
        "fp16 is for GPUs (CUDA or TensorRT); not with device cpu": (
            options.precision == "fp16" and options.device == "cpu"
        ),
        "int8 is for CPUs: its dynamic quantisation runs on no GPU provider": (
            options.precision == "int8"
            and (options.device == "gpu" or options.accelerator == "tensorrt")
        ),
        "TensorRT runs on GPUs; not with device cpu": (
            options.accelerator == "tensorrt" and options.device == "cpu"
        ),
        "the quality gate measures int8 or fp16 exports; this one is fp32": (
            options.quality_check is not None and options.precision == "fp32"
        ),
        "TensorRT's engines are built on the server: measure them there (emotriton eval)": (
            options.quality_check is not None and options.accelerator == "tensorrt"
        ),
    }
    for refusal, applies in refusals.items():
        if applies:
            raise ExportError(refusal)


@dataclass(frozen=True)
class _ServedGraph:
    """The encoder graph to install, and what the gates found on the way."""

    path: Path
    parity: ParityReport
    fusions: dict[str, int]
    quality: QualityReport | None


def _fp32_graph(
    exported: Path, parity_gate: Callable[[Path], ParityReport], options: ExportOptions, log: Log
) -> tuple[Path, ParityReport, dict[str, int]]:
    """The exported graph with transformer fusions when they keep parity, else as exported.
    TensorRT gets the graph unfused: it fuses on its own, and cannot run the fused operators.
    So does int8: quantised unfused, it ran 15-20% faster than quantised after the fusions
    (the fused Attention becomes QAttention), at the same quality (docs/precision.md)."""
    if options.fuse and options.accelerator == "none" and options.precision != "int8":
        fused = exported.with_name("model.fused.onnx")
        try:
            fusions = fuse_transformer(exported, fused)
        except Exception as error:  # a rewrite the graph does not fit: serve it unfused
            log(f"transformer fusions skipped: {type(error).__name__}: {error}")
            fusions = {}
        if fusions:
            try:
                parity = parity_gate(fused)
            except ParityError as error:
                log(f"transformer fusions dropped, the fused graph fails parity: {error}")
            else:
                log(f"transformer fusions kept: {fusions}")
                return fused, parity, fusions
    return exported, parity_gate(exported), {}


def _served_graph(
    exported: Path,
    parity_gate: Callable[[Path], ParityReport],
    pipeline: Callable[[Path], InProcessPipeline],
    labels: Sequence[str],
    options: ExportOptions,
    log: Log,
) -> _ServedGraph:
    """The graph the encoder model serves: fp32 (fused when parity allows), then converted to
    the export's precision and gated on quality. TensorRT keeps the fp32 graph and builds its
    fp16 engine from it (precision_mode in the config)."""
    fp32, parity, fusions = _fp32_graph(exported, parity_gate, options, log)
    log(str(parity))
    if options.precision == "fp32" or options.accelerator == "tensorrt":
        return _ServedGraph(fp32, parity, fusions, None)
    served = convert(options.precision, fp32, fp32.with_name(f"model.{options.precision}.onnx"))
    if options.quality_check is None:
        log(f"{options.precision}: no quality gate ran (no labelled data given)")
        return _ServedGraph(served, parity, fusions, None)
    log(f"{options.precision}: measuring quality against fp32")
    report = options.quality_check.compare(
        pipeline(fp32).classify, pipeline(served).classify, labels
    )
    log(str(report))
    return _ServedGraph(served, parity, fusions, gate(report, options.max_metric_drop))


def _pipelines(
    hf_tokenizer,
    tokenizer_json: Path,
    input_names: Sequence[str],
    max_length: int,
    scheme: LabelScheme,
    head: Head | None = None,
) -> Callable[[Path], InProcessPipeline]:
    """encoder graph → the exported pipeline around it, run in this process."""
    tokenizer = load_tokenizer(
        tokenizer_json, max_length, hf_tokenizer.pad_token, hf_tokenizer.pad_token_id
    )
    return lambda encoder: InProcessPipeline(tokenizer, input_names, encoder, scheme, head)


def _quiet(message: str) -> None:
    """The default log: say nothing."""


def _same(names: Sequence[str]) -> dict[str, str]:
    """A step tensor map that keeps each model tensor's name in the ensemble."""
    return {name: name for name in names}


def _trace_sample(hf_tokenizer, input_names: Sequence[str], max_length: int) -> dict:
    encoded = hf_tokenizer(
        sample_texts(max_length)[:2],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {name: encoded[name] for name in input_names}


def export_classifier(source: str, options: ExportOptions, log: Log = _quiet) -> ExportResult:
    """Export a sequence classifier (hub id or directory) as ensemble `options.name`."""
    _check_options(options)
    log(f"loading {source}")
    classifier = load_classifier(
        source,
        revision=options.revision,
        trust_remote_code=options.trust_remote_code,
        recipe=options.recipe,
        logits_output=options.logits_output,
    )
    log(f"recipe {classifier.recipe.name}; logits: output {classifier.logits_output!r}")
    scheme = classifier.recipe.scheme(classifier.raw_config, options.thresholds)
    max_length = classifier.max_length(options.max_length)
    inputs = classifier.input_names
    num_labels = len(scheme.labels)
    with tempfile.TemporaryDirectory(prefix="emotriton-export-") as scratch:
        ensemble = _Ensemble(options, Path(scratch))
        logits = TensorSpec("logits", mc.TYPE_FP32, [num_labels])
        logits_model = LogitsModel(classifier.model, classifier.logits_output)
        tokenizer_json, onnx_path = ensemble.encoder(
            classifier.tokenizer, inputs, max_length, logits_model, logits, log
        )
        log("checking parity with PyTorch")
        graph = _served_graph(
            onnx_path,
            lambda path: check_parity(
                classifier, scheme, path, tokenizer_json, max_length, options.tolerance
            ),
            _pipelines(classifier.tokenizer, tokenizer_json, inputs, max_length, scheme),
            scheme.labels,
            options,
            log,
        )
        ensemble.encoder_model(graph.path, inputs, logits, max_length)
        folders = ensemble.finish(scheme, [logits], _same(["logits"]), "logits", max_length)
        models = install(folders, options.repository, options.name, options.overwrite)
    return _result(options, models, scheme, max_length, graph)


def _result(
    options: ExportOptions,
    models: tuple[Path, ...],
    scheme: LabelScheme,
    max_length: int,
    graph: _ServedGraph,
) -> ExportResult:
    return ExportResult(
        options.name,
        models,
        scheme,
        max_length,
        graph.parity,
        options.precision,
        graph.fusions,
        graph.quality,
    )


def export_embedding_classifier(
    encoder_source: str, head_source: str, options: ExportOptions, log: Log = _quiet
) -> ExportResult:
    """Export a sentence encoder with an ONNX head (seed 001's format) as `options.name`."""
    _check_options(options)
    log(f"loading {encoder_source} and head {head_source}")
    encoder = load_sentence_encoder(
        encoder_source, revision=options.revision, trust_remote_code=options.trust_remote_code
    )
    head = load_head(head_source)
    if head.input_dim not in (0, encoder.dimension):  # 0: the head leaves the dim symbolic
        raise ExportError(
            f"the head takes {head.input_dim}-d input; {encoder_source} embeds in "
            f"{encoder.dimension} dimensions"
        )
    if options.max_length not in (None, encoder.max_length):
        raise ExportError(
            f"{encoder_source} embeds up to {encoder.max_length} tokens, as it was trained; "
            "--max-length cannot change that"
        )
    scheme = LabelScheme(
        head.labels, "none", "threshold", head.thresholds, threshold_profile="head"
    )
    inputs, max_length, dim = encoder.input_names, encoder.max_length, encoder.dimension
    with tempfile.TemporaryDirectory(prefix="emotriton-export-") as scratch:
        ensemble = _Ensemble(options, Path(scratch))
        embedding = TensorSpec(EMBEDDING_OUTPUT, mc.TYPE_FP32, [dim])
        tokenizer_json, onnx_path = ensemble.encoder(
            encoder.tokenizer, inputs, max_length, EmbeddingModel(encoder.model), embedding, log
        )
        log("checking parity with sentence-transformers")
        graph = _served_graph(
            onnx_path,
            lambda path: check_embedding_parity(
                encoder, head, path, tokenizer_json, options.tolerance
            ),
            _pipelines(encoder.tokenizer, tokenizer_json, inputs, max_length, scheme, head),
            scheme.labels,
            options,
            log,
        )
        ensemble.encoder_model(graph.path, inputs, embedding, max_length)
        pairs = [TensorSpec(label, mc.TYPE_FP32, [2]) for label in head.labels]
        # Label names become ensemble tensors; the prefix keeps them apart from other tensors.
        pair_tensors = {label: f"head.{label}" for label in head.labels}
        ensemble.onnx_model(
            "head",
            head.onnx_path,
            [TensorSpec(head.input_name, mc.TYPE_FP32, [dim])],
            pairs,
            {head.input_name: EMBEDDING_OUTPUT},
            pair_tensors,
        )
        folders = ensemble.finish(scheme, pairs, pair_tensors, "label_pairs", max_length)
        models = install(folders, options.repository, options.name, options.overwrite)
    return _result(options, models, scheme, max_length, graph)
