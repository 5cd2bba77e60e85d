"""What an export is asked to do. Kept free of heavy imports: the CLI builds its options from
these fields (`option`: the help, and argparse's type or choices, beside the default)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .quality import DEFAULT_MAX_METRIC_DROP, QualityCheck

Device = Literal["auto", "cpu", "gpu"]
Accelerator = Literal["none", "tensorrt"]
Precision = Literal["fp32", "int8", "fp16"]
DEVICES, ACCELERATORS, PRECISIONS = (typing.get_args(t) for t in (Device, Accelerator, Precision))

# The parity gate's bound on |Δprobability| between the served pipeline and PyTorch.
DEFAULT_TOLERANCE = 1e-4


def option(default: Any, help: str, **argparse_options: Any) -> Any:
    """A field that its command line offers as --NAME: its help, and argparse's type, choices
    or action."""
    return field(default=default, metadata={"help": help, **argparse_options})


@dataclass(frozen=True)
class Batching:
    """How the models of one ensemble batch, and the encoder's threads.

    No model waits for more requests by default: each batches whatever queued while it was busy,
    which under load is a full batch (ragged batching merges any lengths), and a lone text pays
    no window. Measured on 2 cores: a 500 µs window made a single text 0.4-0.6 ms slower and
    32 clients no faster. `max_queue_delay_us` sets the encoder's window for the devices where
    a bigger batch is worth a wait (GPUs).

    Load shedding, at the encoder (where work waits): requests beyond `max_queue_size` waiting,
    or waiting longer than `queue_timeout_us` (or the request's own, shorter deadline), are
    rejected at once with UNAVAILABLE, which the SDK raises as OverloadedError. 64 single texts
    are about a quarter of a second of the encoder's work on 2 CPU cores; the timeout is for
    bigger requests and stalls (docs/reliability.md has the open-loop measurements).
    """

    max_batch_size: int = option(64, "most texts per request and per batch", type=int)
    max_queue_delay_us: int = option(
        0, "the encoder's batching window in µs (the other models take none)", type=int
    )
    # 2 on CPU: beside a bulk call on 2 cores, an interactive text's p99 was 2.1-2.5x its
    # alone with 2, 3.0-3.1x with 4, for 9% less bulk throughput (README, Benchmarks).
    preferred_batch_size: int = option(
        2,
        "texts the encoder batches at most from queued requests, and per request of a bulk "
        "call: a short batch is what a request that arrives behind it waits for",
        type=int,
    )
    encoder_threads: int = 0  # onnxruntime intra-op threads; 0: one per core
    max_queue_size: int = option(
        64,
        "requests the encoder holds waiting; more are shed as overloaded (0: no limit)",
        type=int,
    )
    queue_timeout_us: int = option(
        1_000_000,
        "longest wait in the encoder's queue before a request is shed (0: no limit)",
        type=int,
    )
    # Bulk requests (a call of many texts, or priority="bulk") wait in a queue of their own,
    # behind the interactive one: longer and deeper, as their callers pace themselves.
    bulk_queue_size: int = option(
        512, "bulk requests the encoder holds waiting, behind the interactive ones", type=int
    )
    bulk_queue_timeout_us: int = option(
        30_000_000,
        "longest wait of a bulk request in the encoder's queue before it is shed",
        type=int,
    )


@dataclass(frozen=True)
class ExportOptions:
    name: str
    repository: Path
    max_length: int | None = option(
        None, "truncate texts to this many tokens (default: the model's limit)", type=int
    )
    batching: Batching = field(default_factory=Batching)
    device: Device = option("auto", "encoder instance kind", choices=DEVICES)
    # Two, so that one is always free when a batch is ready: with one, Triton 2.51's dynamic
    # batcher, once the instance finishes, looks for a free one before that instance waits for
    # work again, and then sleeps until the next request arrives or 500 ms pass (README:
    # "Two encoder instances"). Each instance has its own onnxruntime session and threads.
    instances: int = option(2, "encoder instances per device", type=int)
    revision: str | None = option(None, "hub revision (branch, tag or commit)")
    trust_remote_code: bool = option(
        False,
        "run the model repository's own code (a hub model needs --revision COMMIT with it)",
        action="store_true",
    )
    allow_pickle: bool = option(
        False,
        "load pickled .bin weights when a model has no safetensors (unpickling can run code: "
        "only for a model you trust)",
        action="store_true",
    )
    recipe: str | None = option(
        None, "override the recipe chosen from the model's config (see --list-recipes)"
    )
    thresholds: str | None = option(
        None,
        "multi-label decisions: a number, a JSON file of label → threshold, or a recipe's "
        "profile name (go-emotions-roberta: card)",
    )
    logits_output: str | None = option(
        None, "the model output that holds the logits: a tuple index or a name"
    )
    tolerance: float = option(
        DEFAULT_TOLERANCE, "parity gate: max |Δprobability| vs PyTorch", type=float
    )
    overwrite: bool = option(False, "replace an earlier export of NAME", action="store_true")
    fuse: bool = True  # transformer fusions, kept when they keep parity (--no-fusion)
    precision: Precision = option(
        "fp32",
        "encoder precision: int8 for CPUs (see docs/precision.md), fp16 for GPUs",
        choices=PRECISIONS,
    )
    quality_check: QualityCheck | None = None  # int8/fp16: labelled texts to gate on
    max_metric_drop: float = option(
        DEFAULT_MAX_METRIC_DROP,
        "with --calibration-data: refuse the export when macro-F1 drops by more than this",
        type=float,
    )
    accelerator: Accelerator = option(
        "none",
        "tensorrt: the native backend runs the encoder on TensorRT (implies --device gpu)",
        choices=ACCELERATORS,
    )
    # On the server; one folder per model inside.
    tensorrt_cache: str = option(
        "/tmp/emotriton-tensorrt",
        "with --accelerator tensorrt: where the server keeps built engines (a server path)",
    )
