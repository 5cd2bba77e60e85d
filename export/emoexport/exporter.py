"""Hugging Face models → one Triton ensemble per model.

- A sequence classifier: tokenizer → encoder (logits) → postprocess.
- A sentence encoder with an ONNX head: tokenizer → encoder (sentence embedding) → head
  (one (neg, pos) pair per label) → postprocess.

Both expose the same contract to clients (emoclient.protocol). The model folders are written to
a staging folder inside the repository, the gates run on exactly those files, and only then do
they replace any previous export of the same name, together.

The encoder graph goes through, in order: transformer fusions (kept when the parity gate still
passes on the fused graph), the parity gate at fp32, then the precision it is served in (int8,
fp16) with its quality gate when labelled data is given.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol

from . import configs, ragged
from .configs import Step, TensorSpec
from .errors import ExportError, ParityError
from .head import POSITIVE_SCORES, Head, load_head
from .inprocess import ExportedEnsemble
from .labels import LabelScheme
from .onnx_export import LogitsModel, export_onnx
from .optimize import fuse_transformer
from .options import ExportOptions, Precision
from .parity import (
    ParityReport,
    check_embedding_parity,
    check_parity,
    sample_texts,
)
from .precision import convert
from .quality import QualityReport, gate
from .sentence_encoder import EMBEDDING_OUTPUT, EmbeddingModel, load_sentence_encoder
from .source import load_classifier
from .triton_models import postprocess as postprocess_source
from .triton_models import tokenizer as tokenizer_source

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
Log = Callable[[str], None]


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
    """One Triton model to write: its config, files placed in its version folder, and text
    files written beside the config (the ensemble's labels)."""

    name: str
    config: mc.ModelConfig
    files: dict[str, Path] = field(default_factory=dict)
    beside: dict[str, str] = field(default_factory=dict)


# Every model folder an export of NAME may write, besides NAME itself: all are replaced together.
PARTS = ("tokenizer", "encoder", "head", "postprocess")


def earlier_export(repository: Path, name: str, overwrite: bool) -> list[str]:
    """The model folders an earlier export of `name` left; refused unless `overwrite`."""
    previous = [
        n for n in (name, *(f"{name}_{part}" for part in PARTS)) if (repository / n).exists()
    ]
    if previous and not overwrite:
        raise ExportError(
            f"{', '.join(previous)} already in {repository}; pass --overwrite to replace"
        )
    return previous


def next_version(repository: Path, name: str) -> int:
    """The version an export of `name` installs: 1, or one past the version it replaces.
    Triton's response cache keys an answer by model name, version and inputs, and keeps it
    across a reload: a re-export (new thresholds, say) loaded at the same version would be
    answered from the entries of the one it replaced."""
    folder = repository / name
    earlier = [int(v.name) for v in folder.iterdir() if v.name.isdigit()] if folder.is_dir() else []
    return max(earlier, default=0) + 1


@contextmanager
def staged(folders: list[ModelFolder], repository: Path, version: int) -> Iterator[Path]:
    """The folders written into a staging folder inside `repository`, each file in version
    folder `version`; removed on leaving."""
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=repository))
    try:
        for folder in folders:
            files = staging / folder.name / str(version)
            files.mkdir(parents=True)
            configs.write(folder.config, staging / folder.name)
            for filename, text in folder.beside.items():
                (staging / folder.name / filename).write_text(text)
            for filename, source in folder.files.items():
                shutil.copyfile(source, files / filename)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install(
    staging: Path, folders: list[ModelFolder], repository: Path, name: str, overwrite: bool
) -> tuple[Path, ...]:
    """Move the staged folders into the repository together, removing whatever an earlier
    export of `name` left (a head it no longer has, say)."""
    previous = earlier_export(repository, name, overwrite)
    for stale in previous:
        shutil.rmtree(repository / stale)
    for folder in folders:
        (staging / folder.name).rename(repository / folder.name)
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

    def tokenizer(self, hf_tokenizer, input_names: Sequence[str], max_length: int) -> None:
        path = self.work / tokenizer_source.TOKENIZER_FILE
        hf_tokenizer.backend_tokenizer.save(str(path))
        config = configs.tokenizer_config(
            self.name("tokenizer"),
            input_names,
            max_length=max_length,
            pad_token=hf_tokenizer.pad_token,
            pad_id=hf_tokenizer.pad_token_id,
            batching=self.options.batching,
        )
        files = {"model.py": Path(tokenizer_source.__file__), tokenizer_source.TOKENIZER_FILE: path}
        self._add(config, files, {protocol.TEXT_INPUT: protocol.TEXT_INPUT}, _same(input_names))

    def encoder(
        self,
        hf_tokenizer,
        input_names: Sequence[str],
        max_length: int,
        module: torch.nn.Module,
        output: TensorSpec,
        log: Log,
    ) -> None:
        """The tokenizer and encoder models. The encoder batches ragged inputs (see
        emoexport.ragged): its graph gets the preamble that pads the merged batch."""
        self.tokenizer(hf_tokenizer, input_names, max_length)
        onnx_path = self.work / "model.onnx"
        log(f"exporting ONNX (inputs: {', '.join(input_names)})")
        sample = _trace_sample(hf_tokenizer, input_names, max_length)
        export_onnx(module, sample, onnx_path, output.name)
        pad_values = {name: 0 for name in input_names}
        pad_values["input_ids"] = hf_tokenizer.pad_token_id
        onnx.save(ragged.add_preamble(onnx.load(str(onnx_path)), pad_values), str(onnx_path))
        inputs = [TensorSpec(name, mc.TYPE_INT64, [-1]) for name in input_names]
        tensorrt = None
        if self.options.accelerator == "tensorrt":
            tensorrt = configs.TensorRT(
                fp16=self.options.precision == "fp16",
                max_length=max_length,
                cache_path=f"{self.options.tensorrt_cache}/{self.name('encoder')}",
            )
        config = configs.onnx_config(
            self.name("encoder"),
            inputs,
            [output],
            batching=self.options.batching,
            queue_delay_us=self.options.batching.max_queue_delay_us,
            threads=self.options.batching.encoder_threads,
            device=self.options.device,
            instances=self.options.instances,
            ragged_inputs=True,
            tensorrt=tensorrt,
            sheds=True,
            warmup_length=max_length,
        )
        self._add(config, {"model.onnx": onnx_path}, _same(input_names), _same([output.name]))

    def head(self, head: Head, embedding: TensorSpec) -> TensorSpec:
        """The ONNX head, served with one [batch, labels] output (Head.served_model): a few
        small matrix products, on one thread (no pool, nothing to spin), batching only what
        queued while it ran. One instance: without priorities or a queue policy its batcher
        prepares the next batch while the instance runs, so it never waits for a free one.
        Returns the tensor it adds to the ensemble."""
        onnx_path = self.work / "head.onnx"
        onnx.save(head.served_model(), str(onnx_path))
        scores = TensorSpec(POSITIVE_SCORES, mc.TYPE_FP32, [len(head.labels)])
        config = configs.onnx_config(
            self.name("head"),
            [TensorSpec(head.input_name, mc.TYPE_FP32, [embedding.dims[0]])],
            [scores],
            batching=self.options.batching,
            queue_delay_us=0,
            threads=1,
            device=self.options.device,
        )
        self._add(
            config,
            {"model.onnx": onnx_path},
            {head.input_name: embedding.name},
            _same([scores.name]),
        )
        return scores

    def finish(
        self,
        scheme: LabelScheme,
        scores: TensorSpec,
        max_length: int,
        own_code: str | None = None,
    ) -> list[ModelFolder]:
        """Add the postprocess of the [batch, labels] tensor `scores` and the ensemble itself;
        the folders to install."""
        num_labels = len(scheme.labels)
        config = configs.postprocess_config(
            self.name("postprocess"),
            scores,
            num_labels,
            scheme.parameters(),
            batching=self.options.batching,
        )
        outputs = _same([protocol.SCORES_OUTPUT, protocol.PREDICTED_OUTPUT])
        files = {"model.py": Path(postprocess_source.__file__)}
        self._add(config, files, _same([scores.name]), outputs)
        published = {
            **scheme.parameters(),
            protocol.PARAM_MAX_LENGTH: str(max_length),
            protocol.PARAM_BULK_BATCH_SIZE: str(self.options.batching.preferred_batch_size),
        }
        if own_code is not None:  # which model code ran: the export can be traced to it
            published[protocol.PARAM_OWN_CODE] = own_code
        ensemble = configs.ensemble_config(
            self.options.name,
            self.steps,
            scheme.labels,
            published,
            batching=self.options.batching,
        )
        labels = {configs.LABELS_FILE: configs.labels_file(scheme.labels)}
        return [*self.folders, ModelFolder(self.options.name, ensemble, beside=labels)]

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
    """Refuse a bad name, an unconfirmed overwrite or options that do not go together, before
    any work is done."""
    if not _NAME.match(options.name):
        raise ExportError(f"model name {options.name!r}: use letters, digits, '_', '-' and '.'")
    earlier_export(options.repository, options.name, options.overwrite)
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
        "the preferred batch size is between 1 and the max batch size": not (
            1 <= options.batching.preferred_batch_size <= options.batching.max_batch_size
        ),
    }
    for refusal, applies in refusals.items():
        if applies:
            raise ExportError(refusal)


class _StagedEncoder:
    """The staged ensemble with one encoder graph or another in place: what the gates run."""

    def __init__(self, staging: Path, name: str, version: int) -> None:
        self.staging = staging
        self.name = name
        self.graph = staging / f"{name}_encoder" / str(version) / "model.onnx"

    def put(self, graph: Path) -> None:
        """Make `graph` the encoder's (what is in place when the gates end is installed)."""
        shutil.copyfile(graph, self.graph)

    def serving(self, graph: Path) -> ExportedEnsemble:
        """The staged ensemble loaded with its encoder serving `graph`; it keeps running that
        graph after another is put in place."""
        self.put(graph)
        return ExportedEnsemble(self.staging, self.name)


def _decisions(ensemble: ExportedEnsemble, texts: list[str], batch: int = 32) -> np.ndarray:
    """bool [texts, labels]: the ensemble's PREDICTED, a request of `batch` texts at a time."""
    parts = [ensemble.classify(texts[i : i + batch])[1] for i in range(0, len(texts), batch)]
    return np.concatenate(parts)


def _serve_graph(
    exported: Path,
    staged: _StagedEncoder,
    parity_of: Callable[[ExportedEnsemble], ParityReport],
    labels: Sequence[str],
    options: ExportOptions,
    log: Log,
) -> tuple[ParityReport, dict[str, int], QualityReport | None]:
    """Put the graph the encoder serves in place: fp32 (fused when parity allows), then
    converted to the export's precision and gated on quality. TensorRT gets the fp32 graph
    unfused and builds its fp16 engine itself (precision_mode in the config); int8 quantises
    the fused graph's MatMuls (docs/precision.md)."""
    fp32, fusions = exported, {}
    if options.fuse and options.accelerator == "none":
        fused = exported.with_name("model.fused.onnx")
        try:
            fusions = fuse_transformer(exported, fused)
        except Exception as error:  # a rewrite the graph does not fit: serve it unfused
            log(f"transformer fusions skipped: {type(error).__name__}: {error}")
        if fusions:
            reference = staged.serving(fused)
            try:
                parity = parity_of(reference)
            except ParityError as error:
                log(f"transformer fusions dropped, the fused graph fails parity: {error}")
                fusions = {}
            else:
                log(f"transformer fusions kept: {fusions}")
                fp32 = fused
    if not fusions:
        reference = staged.serving(exported)
        parity = parity_of(reference)
    log(str(parity))
    if options.precision == "fp32" or options.accelerator == "tensorrt":
        return parity, fusions, None
    served = convert(options.precision, fp32, fp32.with_name(f"model.{options.precision}.onnx"))
    if options.quality_check is None:
        staged.put(served)
        log(f"{options.precision}: no quality gate ran (no labelled data given)")
        return parity, fusions, None
    candidate = staged.serving(served)
    log(f"{options.precision}: measuring quality against fp32")
    report = options.quality_check.compare(
        lambda texts: _decisions(reference, texts),
        lambda texts: _decisions(candidate, texts),
        labels,
    )
    log(str(report))
    return parity, fusions, gate(report, options.max_metric_drop)


def _gated_install(
    folders: list[ModelFolder],
    scratch: Path,
    parity_of: Callable[[ExportedEnsemble], ParityReport],
    scheme: LabelScheme,
    max_length: int,
    options: ExportOptions,
    log: Log,
) -> ExportResult:
    """Stage the folders, put in place the encoder graph the gates choose (the exported one is
    `scratch`/model.onnx), and install them."""
    version = next_version(options.repository, options.name)
    with staged(folders, options.repository, version) as staging:
        parity, fusions, quality = _serve_graph(
            scratch / "model.onnx",
            _StagedEncoder(staging, options.name, version),
            parity_of,
            scheme.labels,
            options,
            log,
        )
        models = install(staging, folders, options.repository, options.name, options.overwrite)
    return ExportResult(
        options.name, models, scheme, max_length, parity, options.precision, fusions, quality
    )


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
        allow_pickle=options.allow_pickle,
        recipe=options.recipe,
        logits_output=options.logits_output,
    )
    log(f"recipe {classifier.recipe.name}; logits: output {classifier.logits_output!r}")
    if classifier.own_code is not None:
        log(f"ran {source}'s own model code: {classifier.own_code}")
    scheme = classifier.recipe.scheme(classifier.raw_config, options.thresholds)
    max_length = classifier.max_length(options.max_length)
    inputs = classifier.input_names
    num_labels = len(scheme.labels)
    with tempfile.TemporaryDirectory(prefix="emotriton-export-") as scratch:
        ensemble = _Ensemble(options, Path(scratch))
        logits = TensorSpec("logits", mc.TYPE_FP32, [num_labels])
        logits_model = LogitsModel(classifier.model, classifier.logits_output)
        ensemble.encoder(classifier.tokenizer, inputs, max_length, logits_model, logits, log)
        folders = ensemble.finish(scheme, logits, max_length, classifier.own_code)
        log("checking parity with PyTorch")
        return _gated_install(
            folders,
            Path(scratch),
            lambda served: check_parity(classifier, scheme, served, max_length, options.tolerance),
            scheme,
            max_length,
            options,
            log,
        )


def export_embedding_classifier(
    encoder_source: str, head_source: str, options: ExportOptions, log: Log = _quiet
) -> ExportResult:
    """Export a sentence encoder with an ONNX head (seed 001's format) as `options.name`."""
    _check_options(options)
    log(f"loading {encoder_source} and head {head_source}")
    encoder = load_sentence_encoder(
        encoder_source,
        revision=options.revision,
        trust_remote_code=options.trust_remote_code,
        allow_pickle=options.allow_pickle,
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
        ensemble.encoder(
            encoder.tokenizer, inputs, max_length, EmbeddingModel(encoder.model), embedding, log
        )
        folders = ensemble.finish(scheme, ensemble.head(head, embedding), max_length)
        log("checking parity with sentence-transformers")
        return _gated_install(
            folders,
            Path(scratch),
            lambda served: check_embedding_parity(encoder, head, served, options.tolerance),
            scheme,
            max_length,
            options,
            log,
        )
