"""What an export is asked to do. Kept free of heavy imports: the CLI reads its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import configs
from .quality import DEFAULT_MAX_METRIC_DROP, QualityCheck

Precision = Literal["fp32", "int8", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8", "fp16")

# The parity gate's bound on |Δprobability| between the served pipeline and PyTorch.
DEFAULT_TOLERANCE = 1e-4


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
