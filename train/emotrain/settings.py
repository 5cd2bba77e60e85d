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


@dataclass(frozen=True)
class FinetuneSettings:
    """End-to-end fine-tuning. The encoder was pre-trained, the classification layers are new:
    they learn at a higher rate. The defaults are the recipe of docs/default-model.md."""

    epochs: int = 3
    batch_size: int = 32
    encoder_learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    warmup: float = 0.06  # fraction of all steps with a linearly rising rate, then linear decay
    weight_decay: float = 0.01
    max_length: int = 128  # truncation in training, and the written tokenizer's limit
    limit: int = 0  # train on this many training texts (drawn with the seed); 0: all
    pooling: str = "mean"  # mean: an added BERT layer that mean-pools; cls: the model's own
    bfloat16: bool = True  # bfloat16 autocast in training steps (weights stay float32)
    half_precision: bool = True  # write float16 weights; every reported figure is theirs
    seed: int = 0
