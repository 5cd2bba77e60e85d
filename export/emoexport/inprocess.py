"""Run an exported ensemble in this process, as the server runs it, without Triton.

Reads the repository folder export wrote: the ensemble's steps and tensor maps, the tokenizer
model's tokenizer.json and parameters, each ONNX model (flattened for ragged inputs as Triton's
backends hand them over), and the postprocess parameters. The served models' own code does the
work, so what this returns for one request of texts is what the server returns. The export
parity gate checks it against PyTorch; `emotriton bench` measures it as the in-process floor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol

from . import ragged
from .triton_models import postprocess, tokenizer

Tensors = dict[str, np.ndarray]
Model = Callable[[Tensors], Tensors]


def read_config(model_directory: Path) -> mc.ModelConfig:
    return text_format.Parse((model_directory / "config.pbtxt").read_text(), mc.ModelConfig())


def _version_directory(model_directory: Path) -> Path:
    """The latest version, as Triton's default version policy serves it."""
    versions = [p for p in model_directory.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, key=lambda p: int(p.name))


def _parameters(config: mc.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def _onnx_model(config: mc.ModelConfig, version: Path) -> Model:
    session = ort.InferenceSession(
        str(version / (config.default_model_filename or "model.onnx")),
        providers=["CPUExecutionProvider"],
    )
    outputs = [spec.name for spec in config.output]
    flat = any(spec.allow_ragged_batch for spec in config.input)

    def run(inputs: Tensors) -> Tensors:
        feed = ragged.flatten(inputs) if flat else inputs
        return dict(zip(outputs, session.run(outputs, feed)))

    return run


def _python_model(config: mc.ModelConfig, version: Path) -> Model:
    parameters = _parameters(config)
    outputs = [spec.name for spec in config.output]
    if (version / tokenizer.TOKENIZER_FILE).exists():
        encoder = tokenizer.TextEncoder(parameters, version, outputs)
        (text_input,) = (spec.name for spec in config.input)
        return lambda inputs: encoder(inputs[text_input])
    decisions = postprocess.Decisions(parameters)
    (scores,) = (spec.name for spec in config.input)
    return lambda inputs: dict(zip(outputs, decisions([inputs[scores]])[0]))


_BACKENDS = {"onnxruntime": _onnx_model, "python": _python_model}


@dataclass(frozen=True)
class _Step:
    model: Model
    input_map: dict[str, str]  # model input → ensemble tensor
    output_map: dict[str, str]  # model output → ensemble tensor


class ExportedEnsemble:
    """Ensemble `name` of an exported repository, loaded into this process."""

    def __init__(self, repository: str | Path, name: str) -> None:
        repository = Path(repository)
        self.name = name
        self.steps: list[_Step] = []
        for step in read_config(repository / name).ensemble_scheduling.step:
            directory = repository / step.model_name
            config = read_config(directory)
            load = _BACKENDS[config.backend]
            self.steps.append(
                _Step(
                    load(config, _version_directory(directory)),
                    dict(step.input_map),
                    dict(step.output_map),
                )
            )

    def run(self, texts: Sequence[str]) -> Tensors:
        """Every tensor of the ensemble, for one request of `texts`."""
        raw = np.array([[text.encode("utf-8")] for text in texts], dtype=np.object_)
        tensors: Tensors = {protocol.TEXT_INPUT: raw}
        for step in self.steps:
            outputs = step.model({name: tensors[t] for name, t in step.input_map.items()})
            tensors.update(
                {step.output_map[n]: v for n, v in outputs.items() if n in step.output_map}
            )
        return tensors

    def classify(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """SCORES FP32 and PREDICTED BOOL, each [texts, labels]."""
        tensors = self.run(texts)
        return tensors[protocol.SCORES_OUTPUT], tensors[protocol.PREDICTED_OUTPUT]
