"""A Python-based Triton backend named `onnxruntime`, for servers without the native one.

The local server installs this file as `<backend-dir>/onnxruntime/model.py`, so a model whose
config says `backend: "onnxruntime"` runs unchanged here and in the NGC image (native backend).
It honours the config parameters of the native backend that matter on CPU.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

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


def session_options(parameters: dict[str, dict[str, str]]) -> ort.SessionOptions:
    """SessionOptions from a Triton config's `parameters` block."""
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
    return options


def group_by_shape(batches: list[dict[str, np.ndarray]]) -> dict[tuple, list[int]]:
    """Indices of requests whose inputs can be concatenated along the batch axis."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, inputs in enumerate(batches):
        key = tuple(
            (name, array.shape[1:], array.dtype.str) for name, array in sorted(inputs.items())
        )
        groups[key].append(index)
    return groups


def run_batched(
    session: ort.InferenceSession,
    batches: list[dict[str, np.ndarray]],
    output_names: list[str],
) -> list[dict[str, np.ndarray] | Exception]:
    """Run each group of same-shaped requests as one batch; a failure stays inside its group."""
    results: list[dict[str, np.ndarray] | Exception] = [None] * len(batches)  # type: ignore[list-item]
    for indices in group_by_shape(batches).values():
        names = batches[indices[0]].keys()
        merged = {name: np.concatenate([batches[i][name] for i in indices]) for name in names}
        try:
            outputs = session.run(output_names, merged)
        except Exception as error:  # onnxruntime raises several unrelated types
            for i in indices:
                results[i] = error
            continue
        bounds = np.cumsum([len(next(iter(batches[i].values()))) for i in indices])[:-1]
        pieces = [np.split(output, bounds) for output in outputs]
        for position, i in enumerate(indices):
            results[i] = {name: piece[position] for name, piece in zip(output_names, pieces)}
    return results


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        filename = config.get("default_model_filename") or "model.onnx"
        path = Path(args["model_repository"]) / args["model_version"] / filename
        providers = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU":
            device = {"device_id": int(args["model_instance_device_id"])}
            providers = [("CUDAExecutionProvider", device), "CPUExecutionProvider"]
        self.session = ort.InferenceSession(
            str(path),
            sess_options=session_options(config.get("parameters", {})),
            providers=providers,
        )
        self.input_names = [spec["name"] for spec in config["input"]]
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
        for result in run_batched(self.session, batches, self.output_names):
            if isinstance(result, Exception):
                responses.append(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result)))
                )
            else:
                tensors = [pb_utils.Tensor(name, array) for name, array in result.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
