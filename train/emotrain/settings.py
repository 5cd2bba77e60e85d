"""Training settings. Kept free of heavy imports: the CLI reads them, and each field that is an
option of its command says so with its help text (`option`)."""

from __future__ import annotations

from dataclasses import dataclass

from emoexport.options import option


@dataclass(frozen=True)
class HeadSettings:
    hidden: int = option(512, "hidden units (0: a linear head)", type=int)
    dropout: float = option(0.1, "dropout before each linear layer's input", type=float)
    epochs: int = option(40, "most epochs (early stopping on validation loss)", type=int)
    patience: int = 5
    batch_size: int = 256
    learning_rate: float = option(1e-3, "AdamW learning rate", type=float)
    weight_decay: float = option(1e-4, "AdamW weight decay", type=float)
    seed: int = option(0, "random seed", type=int)


@dataclass(frozen=True)
class FinetuneSettings:
    """End-to-end fine-tuning. The encoder was pre-trained, the classification layers are new:
    they learn at a higher rate. The defaults are the recipe of docs/default-model.md."""

    epochs: int = option(3, "epochs (the best on validation is kept)", type=int)
    batch_size: int = option(32, "texts per training step", type=int)
    encoder_learning_rate: float = option(
        1e-4, "AdamW learning rate of the pre-trained encoder", type=float
    )
    head_learning_rate: float = option(
        1e-3, "AdamW learning rate of the pooler and classifier", type=float
    )
    # A linearly rising rate over this fraction of all steps, then linear decay.
    warmup: float = option(0.06, "fraction of the steps with a rising learning rate", type=float)
    weight_decay: float = option(0.01, "AdamW weight decay", type=float)
    # Truncation in training, and the written tokenizer's limit.
    max_length: int = option(128, "truncation, in tokens", type=int)
    limit: int = option(0, "train on this many training texts, drawn at random (0: all)", type=int)
    pooling: str = "mean"  # mean: an added BERT layer that mean-pools; cls: the model's own
    bfloat16: bool = True  # bfloat16 autocast in training steps (weights stay float32)
    half_precision: bool = True  # write float16 weights; every reported figure is theirs
    seed: int = option(0, "random seed", type=int)
