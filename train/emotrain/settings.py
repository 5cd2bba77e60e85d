"""Training settings. Kept free of heavy imports: the CLI reads their defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadSettings:
    hidden: int = 512  # 0: a linear head
    dropout: float = 0.1
    epochs: int = 40
    patience: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
