"""A Python-based Triton backend named `onnxruntime`, for servers without the native one.

The local server installs this file as `<backend-dir>/onnxruntime/model.py`, so a model whose
config says `backend: "onnxruntime"` runs unchanged here and in the NGC image (native backend).
It honours the config parameters of the native backend that matter on CPU, and Triton's ragged
batching: inputs marked `allow_ragged_batch` arrive flattened and concatenated, with the
config's `batch_input` tensors computed as Triton's BackendInputCollector does (Triton's python
backend computes none of them itself). Idle onnxruntime threads never spin: on a shared CPU,
spinning threads of several model processes (or of two instances of one model) take each
other's cores.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument  # a request's own fault

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton, by unit tests
    pb_utils = None

# Native onnxruntime backend parameter → SessionOptions attribute (same meaning, same values).
_INT_OPTIONS = {
    "intra_op_thread_count": "intra_op_num_threads",
    "inter_op_thread_count": "inter_op_num_threads",
}
_BOOL_OPTIONS = {
    "enable_mem_arena": "enable_cpu_mem_arena",
    "enable_mem_pattern": "enable_mem_pattern",
}
# Not settable on the native backend of Triton 2.51; always off here. Spinning only while a run
# lasts (session.force_spinning_stop) was measured twice: a single text's encoder run was 0.5-0.9
# ms shorter, but now and then requests waited over 1 s in the encoder's queue (perf_analyzer on
# int8, 1 and 8 clients: in 2 runs of 3, never in runs with spinning off), and two encoder
# instances, whose runs overlap, were slower.
_NO_SPINNING = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")


def session_options(parameters: dict[str, dict[str, str]]) -> ort.SessionOptions:
    """SessionOptions from a Triton config's `parameters` block; idle threads never spin."""
    values = {key: value["string_value"] for key, value in parameters.items()}
    options = ort.SessionOptions()
    for key, attribute in _INT_OPTIONS.items():
        if key in values:
            setattr(options, attribute, int(values[key]))
    for key, attribute in _BOOL_OPTIONS.items():
        if key in values:
            setattr(options, attribute, values[key].lower() in ("1", "true"))
    if values.get("execution_mode") == "1":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    for key in _NO_SPINNING:
        options.add_session_config_entry(key, "0")
    return options


_BATCH_INPUT_TYPES = {"TYPE_INT32": np.int32, "TYPE_FP32": np.float32}


@dataclass(frozen=True)
class BatchInput:
    """A config `batch_input`: a tensor Triton computes from the requests of one batch."""

    kind: str
    target_names: tuple[str, ...]
    data_type: type
    source_input: str

    @classmethod
    def from_config(cls, spec: dict[str, Any]) -> BatchInput:
        return cls(
            kind=spec["kind"],
            target_names=tuple(spec["target_name"]),
            data_type=_BATCH_INPUT_TYPES[spec["data_type"]],
            source_input=spec["source_input"][0],
        )

    def value(self, sources: Sequence[np.ndarray]) -> np.ndarray:
        """The tensor for a batch whose requests hold `sources` (each [batch, ...])."""
        counts = np.array([source.size for source in sources])
        item_shapes = [np.tile(s.shape[1:], (len(s), 1)) for s in sources]
        values = {
            "BATCH_ELEMENT_COUNT": lambda: counts,
            "BATCH_ACCUMULATED_ELEMENT_COUNT": lambda: np.cumsum(counts),
            "BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO": lambda: np.cumsum([0, *counts]),
            # Only the shape carries information; Triton leaves the content unset.
            "BATCH_MAX_ELEMENT_COUNT_AS_SHAPE": lambda: np.zeros(counts.max()),
            "BATCH_ITEM_SHAPE": lambda: np.concatenate(item_shapes),
            "BATCH_ITEM_SHAPE_FLATTEN": lambda: np.concatenate(item_shapes).reshape(-1),
        }
        return values[self.kind]().astype(self.data_type)


def group_by_shape(
    batches: list[dict[str, np.ndarray]], ragged: Collection[str] = ()
) -> dict[tuple, list[int]]:
    """Indices of requests that can run as one batch: equal shapes beyond the batch axis,
    except for ragged inputs, whose shapes may differ."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, inputs in enumerate(batches):
        key = tuple(
            (name, None if name in ragged else array.shape[1:], array.dtype.str)
            for name, array in sorted(inputs.items())
        )
        groups[key].append(index)
    return groups


def merge(
    requests: list[dict[str, np.ndarray]],
    ragged: Collection[str] = (),
    batch_inputs: Sequence[BatchInput] = (),
) -> dict[str, np.ndarray]:
    """The model's inputs for one batch: inputs concatenated along the batch axis, ragged ones
    flattened and concatenated, and the batch inputs."""
    merged = {
        name: np.concatenate([r[name].reshape(-1) if name in ragged else r[name] for r in requests])
        for name in requests[0]
    }
    for batch_input in batch_inputs:
        value = batch_input.value([r[batch_input.source_input] for r in requests])
        merged.update(dict.fromkeys(batch_input.target_names, value))
    return merged


def run_batched(
    session: ort.InferenceSession,
    batches: list[dict[str, np.ndarray]],
    output_names: list[str],
    ragged: Collection[str] = (),
    batch_inputs: Sequence[BatchInput] = (),
) -> list[dict[str, np.ndarray] | Exception]:
    """Run each group of requests that can be batched as one batch; a request that fails
    fails alone. Outputs are split by each request's batch size."""
    results: list[dict[str, np.ndarray] | Exception] = [None] * len(batches)  # type: ignore[list-item]
    for indices in group_by_shape(batches, ragged).values():
        group = [batches[i] for i in indices]
        try:
            outputs = session.run(output_names, merge(group, ragged, batch_inputs))
        except Exception as error:  # onnxruntime raises several unrelated types
            if len(indices) == 1:
                results[indices[0]] = error
                continue
            # One malformed request fails the whole merged run: run each request alone, so
            # that it fails alone.
            for i in indices:
                (results[i],) = run_batched(
                    session, [batches[i]], output_names, ragged, batch_inputs
                )
            continue
        bounds = np.cumsum([len(next(iter(request.values()))) for request in group])[:-1]
        pieces = [np.split(output, bounds) for output in outputs]
        for position, i in enumerate(indices):
            results[i] = {name: piece[position] for name, piece in zip(output_names, pieces)}
    return results


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        filename = config.get("default_model_filename") or "model.onnx"
        path = Path(args["model_repository"]) / args["model_version"] / filename
        providers: list[str | tuple[str, dict[str, int]]] = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU":
            device = {"device_id": int(args["model_instance_device_id"])}
            providers = [("CUDAExecutionProvider", device), "CPUExecutionProvider"]
        self.session = ort.InferenceSession(
            str(path),
            sess_options=session_options(config.get("parameters", {})),
            providers=providers,
        )
        self.input_names = [spec["name"] for spec in config["input"]]
        self.ragged = {spec["name"] for spec in config["input"] if spec.get("allow_ragged_batch")}
        self.batch_inputs = [BatchInput.from_config(s) for s in config.get("batch_input", [])]
        self.output_names = [spec["name"] for spec in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        batches = [
            {
                name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                for name in self.input_names
            }
            for request in requests
        ]
        responses = []
        results = run_batched(
            self.session, batches, self.output_names, self.ragged, self.batch_inputs
        )
        for result in results:
            if isinstance(result, Exception):
                code = (
                    pb_utils.TritonError.INVALID_ARG
                    if isinstance(result, InvalidArgument)
                    else pb_utils.TritonError.INTERNAL
                )
                responses.append(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result), code))
                )
            else:
                tensors = [pb_utils.Tensor(name, array) for name, array in result.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
