"""Hugging Face classifier → a Triton ensemble: tokenizer → encoder → postprocess.

Nothing is written until the parity gate passes; then the four model folders replace any
previous export of the same name together.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emoclient import protocol

from . import configs
from .errors import ExportError
from .labels import LabelScheme
from .onnx_export import export_onnx
from .parity import DEFAULT_TOLERANCE, ParityReport, check_parity, sample_texts
from .source import HFClassifier, load_classifier
from .triton_models import postprocess as postprocess_source
from .triton_models import tokenizer as tokenizer_source

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    tolerance: float = DEFAULT_TOLERANCE
    overwrite: bool = False


@dataclass(frozen=True)
class ExportResult:
    name: str
    models: tuple[Path, ...]
    scheme: LabelScheme
    max_length: int
    parity: ParityReport


@dataclass(frozen=True)
class ModelFolder:
    """One Triton model to write: its config, and files placed in version folder 1."""

    name: str
    config: object
    files: dict[str, Path] = field(default_factory=dict)


def model_names(name: str) -> dict[str, str]:
    return {
        "ensemble": name,
        "tokenizer": f"{name}_tokenizer",
        "encoder": f"{name}_encoder",
        "postprocess": f"{name}_postprocess",
    }


def install(folders: list[ModelFolder], repository: Path, overwrite: bool) -> tuple[Path, ...]:
    """Write the folders into a staging area, then move them into the repository together."""
    repository.mkdir(parents=True, exist_ok=True)
    existing = [f.name for f in folders if (repository / f.name).exists()]
    if existing and not overwrite:
        raise ExportError(
            f"{', '.join(existing)} already in {repository}; pass --overwrite to replace"
        )
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=repository))
    try:
        for folder in folders:
            version = staging / folder.name / "1"
            version.mkdir(parents=True)
            configs.write(folder.config, staging / folder.name)
            for filename, source in folder.files.items():
                shutil.copyfile(source, version / filename)
        for folder in folders:
            shutil.rmtree(repository / folder.name, ignore_errors=True)
            (staging / folder.name).rename(repository / folder.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tuple(repository / folder.name for folder in folders)


def export_classifier(
    source: str, options: ExportOptions, log: Callable[[str], None] = lambda message: None
) -> ExportResult:
    """Export `source` (hub id or directory) as ensemble `options.name` in the repository."""
    if not _NAME.match(options.name):
        raise ExportError(f"model name {options.name!r}: use letters, digits, '_', '-' and '.'")
    log(f"loading {source}")
    classifier = load_classifier(
        source, revision=options.revision, trust_remote_code=options.trust_remote_code
    )
    scheme = LabelScheme.from_hf_config(classifier.config)
    max_length = classifier.max_length(options.max_length)
    with tempfile.TemporaryDirectory(prefix="emotriton-export-") as scratch:
        work = Path(scratch)
        tokenizer_json = work / "tokenizer.json"
        classifier.tokenizer.backend_tokenizer.save(str(tokenizer_json))
        onnx_path = work / "model.onnx"
        log(f"exporting ONNX (inputs: {', '.join(classifier.input_names)})")
        export_onnx(classifier.model, _trace_sample(classifier, max_length), onnx_path)
        log("checking parity with PyTorch")
        parity = check_parity(
            classifier, scheme, onnx_path, tokenizer_json, max_length, options.tolerance
        )
        log(str(parity))
        folders = _model_folders(classifier, scheme, max_length, options, tokenizer_json, onnx_path)
        models = install(folders, options.repository, options.overwrite)
    return ExportResult(options.name, models, scheme, max_length, parity)


def _trace_sample(classifier: HFClassifier, max_length: int) -> dict:
    texts = sample_texts(max_length)[:2]
    encoded = classifier.tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {name: encoded[name] for name in classifier.input_names}


def _model_folders(
    classifier: HFClassifier,
    scheme: LabelScheme,
    max_length: int,
    options: ExportOptions,
    tokenizer_json: Path,
    onnx_path: Path,
) -> list[ModelFolder]:
    names = model_names(options.name)
    inputs = list(classifier.input_names)
    num_labels = len(scheme.labels)
    batching = options.batching
    published = {**scheme.parameters(), protocol.PARAM_MAX_LENGTH: str(max_length)}
    tokenizer = configs.tokenizer_config(
        names["tokenizer"],
        inputs,
        max_length=max_length,
        pad_token=classifier.tokenizer.pad_token,
        pad_id=classifier.tokenizer.pad_token_id,
        batching=batching,
    )
    encoder = configs.encoder_config(
        names["encoder"],
        inputs,
        "logits",
        [num_labels],
        batching=batching,
        device=options.device,
        instances=options.instances,
    )
    postprocess = configs.postprocess_config(
        names["postprocess"], num_labels, scheme.parameters(), batching=batching
    )
    passthrough = {name: name for name in inputs}
    ensemble = configs.ensemble_config(
        names["ensemble"],
        [
            configs.Step(
                names["tokenizer"], {protocol.TEXT_INPUT: protocol.TEXT_INPUT}, passthrough
            ),
            configs.Step(names["encoder"], passthrough, {"logits": "logits"}),
            configs.Step(
                names["postprocess"],
                {"logits": "logits"},
                {
                    protocol.SCORES_OUTPUT: protocol.SCORES_OUTPUT,
                    protocol.PREDICTED_OUTPUT: protocol.PREDICTED_OUTPUT,
                },
            ),
        ],
        num_labels,
        published,
        batching=batching,
    )
    return [
        ModelFolder(
            names["tokenizer"],
            tokenizer,
            {"model.py": Path(tokenizer_source.__file__), "tokenizer.json": tokenizer_json},
        ),
        ModelFolder(names["encoder"], encoder, {"model.onnx": onnx_path}),
        ModelFolder(
            names["postprocess"], postprocess, {"model.py": Path(postprocess_source.__file__)}
        ),
        ModelFolder(names["ensemble"], ensemble),
    ]
