"""Triton model configs, built as Triton's own protobuf messages and printed with text_format.

Building `ModelConfig` messages, not strings, means a misspelt field or a wrong type fails here,
at export, instead of at model load on a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol

from . import ragged
from .options import Batching, Device
from .triton_models import tokenizer as tokenizer_model

_INSTANCE_KINDS = {
    "auto": mc.ModelInstanceGroup.KIND_AUTO,
    "cpu": mc.ModelInstanceGroup.KIND_CPU,
    "gpu": mc.ModelInstanceGroup.KIND_GPU,
}


# The native onnxruntime backend's parameter (the local backend reads it too).
INTRA_OP_THREADS = "intra_op_thread_count"


def _tensor(name: str, data_type: int, dims: Sequence[int]) -> dict:
    return {"name": name, "data_type": data_type, "dims": list(dims)}


def _decision_outputs(num_labels: int) -> list[dict]:
    """SCORES and PREDICTED: what the postprocess produces and the ensemble returns."""
    return [
        _tensor(protocol.SCORES_OUTPUT, mc.TYPE_FP32, [num_labels]),
        _tensor(protocol.PREDICTED_OUTPUT, mc.TYPE_BOOL, [num_labels]),
    ]


def _parameters(config: mc.ModelConfig, values: Mapping[str, str]) -> None:
    for key, value in values.items():
        config.parameters[key].string_value = value


def _warmed_up(config: mc.ModelConfig, batch_sizes: Sequence[int], length: int = 1) -> None:
    """model_warmup: a request of each batch size, every input zeros (empty texts for BYTES),
    each variable dimension `length` long, run by Triton before the model is ready, at every
    load (a start, a reload, a repair): the first real request then costs what later ones do
    (the python stubs' first calls, onnxruntime's first runs and allocator growth)."""
    for batch_size in batch_sizes:
        sample = config.model_warmup.add(name=f"{batch_size} zero inputs", batch_size=batch_size)
        for tensor in config.input:
            warm = sample.inputs[tensor.name]
            warm.data_type = tensor.data_type
            warm.dims.extend(length if dim < 0 else dim for dim in tensor.dims)
            warm.zero_data = True


def _batched(
    config: mc.ModelConfig, batching: Batching, queue_delay_us: int, sheds: bool
) -> mc.ModelConfig:
    """Dynamic batching; with `sheds`, Triton's queue policy refuses what exceeds the queue's
    size or deadline. Only the encoder sheds: it is where work waits, and a model after it
    would throw away texts the encoder has already computed."""
    config.max_batch_size = batching.max_batch_size
    config.dynamic_batching.max_queue_delay_microseconds = queue_delay_us
    if not sheds:
        return config
    # Two priorities, interactive first (Triton's own ordering): a bulk job's requests wait
    # behind every interactive one, in a deeper queue with a longer deadline of their own.
    # Batches of queued requests stop at the preferred size: an interactive request waits for
    # at most one short batch of bulk work (the first to end on either encoder instance), not
    # a full one (64 texts take 0.35-0.5 s on 2 CPU cores). On CPU a text costs about the
    # same alone or in a batch; on a GPU, raise it.
    config.dynamic_batching.preferred_batch_size.append(batching.preferred_batch_size)
    config.dynamic_batching.priority_levels = protocol.PRIORITY_BULK
    config.dynamic_batching.default_priority_level = protocol.PRIORITY_INTERACTIVE
    _shed(
        config.dynamic_batching.default_queue_policy,
        batching.max_queue_size,
        batching.queue_timeout_us,
    )
    _shed(
        config.dynamic_batching.priority_queue_policy[protocol.PRIORITY_BULK],
        batching.bulk_queue_size,
        batching.bulk_queue_timeout_us,
    )
    return config


def _shed(policy: mc.ModelQueuePolicy, size: int, timeout_us: int) -> None:
    """Refuse what exceeds the queue's size or deadline, at once."""
    policy.max_queue_size = size
    policy.default_timeout_microseconds = timeout_us
    policy.timeout_action = mc.ModelQueuePolicy.REJECT
    policy.allow_timeout_override = True  # a client's deadline, when shorter, is the request's


def tokenizer_config(
    name: str,
    encoder_inputs: Sequence[str],
    *,
    max_length: int,
    pad_token: str,
    pad_id: int,
    batching: Batching,
) -> mc.ModelConfig:
    config = mc.ModelConfig(
        name=name,
        backend="python",
        input=[_tensor(protocol.TEXT_INPUT, mc.TYPE_STRING, [1])],
        output=[_tensor(input_name, mc.TYPE_INT64, [-1]) for input_name in encoder_inputs],
        instance_group=[{"kind": mc.ModelInstanceGroup.KIND_CPU, "count": 1}],
    )
    _parameters(
        config,
        {
            tokenizer_model.MAX_LENGTH: str(max_length),
            tokenizer_model.PAD_TOKEN: pad_token,
            tokenizer_model.PAD_ID: str(pad_id),
            tokenizer_model.MAX_TEXT_BYTES: str(protocol.MAX_TEXT_BYTES),
        },
    )
    # No dynamic batcher: the python backend fails every request of a batch when one of them
    # has a BYTES tensor it cannot read, so each request runs alone (tokenising is cheap); the
    # encoder behind it batches and sheds load.
    config.max_batch_size = batching.max_batch_size
    _warmed_up(config, [1])
    return config


@dataclass(frozen=True)
class TensorRT:
    """The native onnxruntime backend's TensorRT execution accelerator for an encoder.

    TensorRT builds one engine per optimisation profile: the profile covers batch 1 to the
    batcher's largest, and 1 token to max_length, so no request shape falls outside it. Engines
    take minutes to build; the cache keeps them across model loads (a path on the server)."""

    fp16: bool
    max_length: int
    cache_path: str
    max_workspace_size_bytes: int = 1 << 30

    def parameters(self, input_names: Sequence[str], max_batch_size: int) -> dict[str, str]:
        """The encoder takes ragged inputs (emoexport.ragged): each token input is one flat
        [texts x tokens] tensor, and TEXT_LENGTHS is [texts, 1]."""

        def shapes(batch: int, tokens: int) -> str:
            flat = [f"{name}:{batch * tokens}" for name in input_names]
            return ",".join([*flat, f"{ragged.TEXT_LENGTHS}:{batch}x1"])

        return {
            "precision_mode": "FP16" if self.fp16 else "FP32",
            "max_workspace_size_bytes": str(self.max_workspace_size_bytes),
            "trt_engine_cache_enable": "1",
            "trt_engine_cache_path": self.cache_path,
            "trt_profile_min_shapes": shapes(1, 1),
            "trt_profile_opt_shapes": shapes(max_batch_size, self.max_length),
            "trt_profile_max_shapes": shapes(max_batch_size, self.max_length),
        }


class TensorSpec(NamedTuple):
    name: str
    data_type: int  # a model_config_pb2 TYPE_* value
    dims: Sequence[int]


def onnx_config(
    name: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    batching: Batching,
    queue_delay_us: int,
    threads: int,
    device: Device = "auto",
    instances: int = 1,
    ragged_inputs: bool = False,
    tensorrt: TensorRT | None = None,
    sheds: bool = False,
    warmup_length: int = 1,
) -> mc.ModelConfig:
    """An ONNX model on the onnxruntime backend: native in NGC, Python-based locally.

    `threads` is onnxruntime's intra-op thread count (0: one per core). `ragged_inputs`: the
    graph takes flat inputs and the batch input of emoexport.ragged. With `tensorrt`, the
    native backend hands the graph to TensorRT on the GPU (the local backend runs
    onnxruntime's CPU provider and ignores it). `sheds`: see `_batched`. Warmed up (see
    `_warmed_up`) with one text and a preferred batch, of `warmup_length` tokens: the batches
    it runs most. Not a full one: warming 64 texts took both instances 2.5 s, all of it in a
    repair's unready time (7 more requests failed while a killed stub was replaced), and a
    first full batch pays its memory's growth once.
    """
    if tensorrt is not None:
        device = "gpu"
    config = mc.ModelConfig(
        name=name,
        backend="onnxruntime",
        default_model_filename="model.onnx",
        input=[{**_tensor(*spec), "allow_ragged_batch": ragged_inputs} for spec in inputs],
        output=[_tensor(*spec) for spec in outputs],
        instance_group=[{"kind": _INSTANCE_KINDS[device], "count": instances}],
    )
    if ragged_inputs:
        config.batch_input.append(ragged.batch_input())
    if tensorrt is not None:
        accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
        accelerators.add(
            name="tensorrt",
            parameters=tensorrt.parameters([spec.name for spec in inputs], batching.max_batch_size),
        )
    _parameters(config, {INTRA_OP_THREADS: str(threads)})
    _warmed_up(config, sorted({1, batching.preferred_batch_size}), warmup_length)
    return _batched(config, batching, queue_delay_us, sheds)


def postprocess_config(
    name: str,
    scores: TensorSpec,
    num_labels: int,
    parameters: Mapping[str, str],
    *,
    batching: Batching,
) -> mc.ModelConfig:
    """One [batch, labels] input: a classifier's logits, or a head's probabilities."""
    config = mc.ModelConfig(
        name=name,
        backend="python",
        input=[_tensor(*scores)],
        output=_decision_outputs(num_labels),
        instance_group=[{"kind": mc.ModelInstanceGroup.KIND_CPU, "count": 1}],
    )
    _parameters(config, parameters)
    _warmed_up(config, [batching.max_batch_size])
    return _batched(config, batching, 0, sheds=False)


@dataclass(frozen=True)
class Step:
    """One model of an ensemble, with its tensors mapped to the ensemble's tensor names."""

    model_name: str
    input_map: Mapping[str, str]
    output_map: Mapping[str, str]


# Beside the ensemble's config.pbtxt: its labels, one a line in SCORES' order. SCORES names it
# as its label_filename, so that any KServe v2 client can ask Triton's classification extension
# for the top k ("parameters": {"classification": k}) and get "score:index:label" strings.
LABELS_FILE = "labels.txt"


def labels_file(labels: Sequence[str]) -> str:
    return "".join(f"{label}\n" for label in labels)


def ensemble_config(
    name: str,
    steps: Sequence[Step],
    labels: Sequence[str],
    parameters: Mapping[str, str],
    *,
    batching: Batching,
) -> mc.ModelConfig:
    """The ensemble clients call: TEXT in, SCORES and PREDICTED out, label metadata published."""
    config = mc.ModelConfig(
        name=name,
        platform="ensemble",
        max_batch_size=batching.max_batch_size,
        input=[_tensor(protocol.TEXT_INPUT, mc.TYPE_STRING, [1])],
        output=_decision_outputs(len(labels)),
    )
    config.output[0].label_filename = LABELS_FILE
    for step in steps:
        config.ensemble_scheduling.step.add(
            model_name=step.model_name,
            model_version=-1,
            input_map=dict(step.input_map),
            output_map=dict(step.output_map),
        )
    _parameters(config, {protocol.PARAM_KIND: protocol.CONTRACT_VERSION, **parameters})
    # Identical requests get the identical answer from Triton's response cache, when the server
    # has one (emotriton serve --cache-size): the key is the texts, which alone decide it.
    config.response_cache.enable = True
    return config


def render(config: mc.ModelConfig) -> str:
    return text_format.MessageToString(config)


def write(config: mc.ModelConfig, model_directory: Path) -> Path:
    path = model_directory / "config.pbtxt"
    path.write_text(render(config))
    return path
