"""Fine-tune a pre-trained encoder end to end as a transformers sequence classifier.

The result is an ordinary Hugging Face model directory (config with `id2label` and
`problem_type`, weights, tokenizer) that `emotriton export` takes through its classifier recipe,
plus the validation-tuned `thresholds.json` (multi-label) and the metrics of the chosen epoch.
The epoch and the thresholds are chosen on the validation split; test is only reported.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    get_linear_schedule_with_warmup,
)

from emoclient.errors import EmotritonError
from emoexport.errors import ParityError
from emoexport.head import THRESHOLDS_FILE
from emoexport.locate import locate

from .datasets import LabelledSplit, load_split
from .head_training import tune_thresholds
from .metrics import Report, evaluate, f1_scores
from .settings import FinetuneSettings

MULTI_LABEL, SINGLE_LABEL = "multi_label_classification", "single_label_classification"
# Texts per batch when only scoring: sorted by length, so padding costs little.
_SCORING_BATCH = 128
# Batches sorted by length together; their order is then shuffled.
_BUCKET_BATCHES = 50
# A transformers *ForSequenceClassification: its submodules (bert, pooler, ...) are attributes
# that torch's Module types as Tensor | Module, so the model is typed loosely.
Classifier = Any


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    train_loss: float
    validation_macro_f1: float
    seconds: float


@dataclass(frozen=True)
class FinetuneReport:
    """The chosen epoch's metrics, decided as the served model decides."""

    base: str
    data: str
    problem_type: str
    settings: FinetuneSettings
    epochs: tuple[EpochResult, ...]
    chosen_epoch: int
    seconds: float
    validation: Report
    test: Report

    def to_dict(self) -> dict:
        return {
            "base": self.base,
            "data": self.data,
            "problem_type": self.problem_type,
            "settings": asdict(self.settings),
            "epochs": [asdict(e) for e in self.epochs],
            "chosen_epoch": self.chosen_epoch,
            "training_seconds": round(self.seconds),
            "validation": self.validation.to_dict(),
            "test": self.test.to_dict(),
        }

    def to_markdown(self) -> str:
        s = self.settings
        decision = (
            "Thresholds were tuned per label for F1 on the validation split only."
            if self.problem_type == MULTI_LABEL
            else "Each text gets its highest-scoring label (softmax, argmax)."
        )
        rows = [
            "| epoch | train loss | validation macro-F1 | minutes |",
            "| ---: | ---: | ---: | ---: |",
        ]
        rows += [
            f"| {e.epoch} | {e.train_loss:.4f} | {e.validation_macro_f1:.3f} "
            f"| {e.seconds / 60:.1f} |"
            for e in self.epochs
        ]
        return (
            f"# Fine-tuning metrics\n\nBase: `{self.base}`. Data: `{self.data}` "
            f"({self.problem_type}). Recipe: {s.epochs} epochs, batch {s.batch_size}, encoder lr "
            f"{s.encoder_learning_rate:g}, head lr {s.head_learning_rate:g}, warm-up {s.warmup:g} "
            f"then linear decay, weight decay {s.weight_decay:g}, max length {s.max_length}, "
            f"seed {s.seed}. Chosen epoch (validation macro-F1): {self.chosen_epoch}. "
            f"Training time: {self.seconds / 60:.0f} minutes. {decision}\n\n"
            + "\n".join(rows)
            + "\n\n"
            + self.test.to_markdown("Test split")
            + "\n"
            + self.validation.to_markdown("Validation split")
        )


def problem_type_of(split: LabelledSplit) -> str:
    """Single-label when every text has exactly one label."""
    return SINGLE_LABEL if (split.targets.sum(axis=1) == 1).all() else MULTI_LABEL


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _Encoded:
    """Token ids of texts, truncated, unpadded; batches are padded to their longest text."""

    def __init__(self, tokenizer, rows: dict[str, list]) -> None:
        self.tokenizer, self.rows = tokenizer, rows
        self.lengths = np.array([len(ids) for ids in rows["input_ids"]])

    @classmethod
    def of(cls, tokenizer, texts: list[str], max_length: int) -> _Encoded:
        return cls(tokenizer, dict(tokenizer(texts, truncation=True, max_length=max_length)))

    def first(self, count: int) -> _Encoded:
        return _Encoded(self.tokenizer, {k: v[:count] for k, v in self.rows.items()})

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        rows = [{k: v[i] for k, v in self.rows.items()} for i in indices]
        return dict(self.tokenizer.pad(rows, return_tensors="pt"))


def _training_batches(
    lengths: np.ndarray, batch_size: int, generator: np.random.Generator
) -> list[np.ndarray]:
    """Shuffled batches of texts of similar length: less padding, still a random order."""
    order = generator.permutation(len(lengths))
    batches = []
    span = batch_size * _BUCKET_BATCHES
    for start in range(0, len(order), span):
        bucket = order[start : start + span]
        bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
        batches += [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
    return [batches[i] for i in generator.permutation(len(batches))]


def _scoring_batches(lengths: np.ndarray) -> Iterator[np.ndarray]:
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), _SCORING_BATCH):
        yield order[start : start + _SCORING_BATCH]


def probabilities(model: Classifier, encoded: _Encoded, problem_type: str) -> np.ndarray:
    """float [texts, labels]: sigmoid (multi-label) or softmax scores, in the texts' order."""
    model.eval()
    scores = np.zeros((len(encoded.lengths), model.config.num_labels), dtype=np.float32)
    activate = torch.sigmoid if problem_type == MULTI_LABEL else partial(torch.softmax, dim=-1)
    with torch.no_grad():
        for indices in _scoring_batches(encoded.lengths):
            scores[indices] = activate(model(**encoded.batch(indices)).logits.float()).numpy()
    return scores


def score_texts(model: Classifier, tokenizer, texts: list[str], problem_type: str) -> np.ndarray:
    """The classifier's scores of `texts`, truncated at the tokenizer's limit, as served."""
    encoded = _Encoded.of(tokenizer, texts, tokenizer.model_max_length)
    return probabilities(model, encoded, problem_type)


def decide(scores: np.ndarray, problem_type: str, thresholds: np.ndarray | None) -> np.ndarray:
    """bool decisions: scores at or over each label's threshold, or the argmax label."""
    if problem_type == MULTI_LABEL:
        return scores >= thresholds
    return np.eye(scores.shape[1], dtype=bool)[scores.argmax(axis=1)]


def _validation_choice(
    scores: np.ndarray, targets: np.ndarray, problem_type: str
) -> tuple[np.ndarray | None, float]:
    """Thresholds tuned on validation (multi-label only) and the macro-F1 they reach."""
    thresholds = tune_thresholds(scores, targets) if problem_type == MULTI_LABEL else None
    decisions = decide(scores, problem_type, thresholds)
    return thresholds, float(f1_scores(targets, decisions).mean())


def _optimiser(model: Classifier, settings: FinetuneSettings) -> torch.optim.Optimizer:
    """The pre-trained encoder at its rate; the rest (new classifier, and the pooler, which
    sentence encoders never trained) at the head's."""
    base = model.base_model
    encoder = [p for name, p in base.named_parameters() if not name.startswith("pooler.")]
    chosen = {id(p) for p in encoder}
    head = [p for p in model.parameters() if id(p) not in chosen]
    return torch.optim.AdamW(
        [
            {"params": encoder, "lr": settings.encoder_learning_rate},
            {"params": head, "lr": settings.head_learning_rate},
        ],
        weight_decay=settings.weight_decay,
    )


class PoolingError(EmotritonError):
    """The base model cannot be given the requested pooling."""


def mean_pooling_config(config: PretrainedConfig, pooling: str) -> PretrainedConfig:
    """The classifier's config: for mean pooling, one more encoder layer (set up by
    `make_mean_pooling_layer`)."""
    if pooling == "cls":
        return config
    if pooling != "mean":
        raise PoolingError(f"unknown pooling {pooling!r}: use mean or cls")
    if config.model_type != "bert":
        raise PoolingError(f"mean pooling needs a BERT encoder, not {config.model_type}; use cls")
    config.num_hidden_layers += 1
    return config


def make_mean_pooling_layer(model: Classifier, scale: float = 100.0) -> None:
    """Turn the last (new) BERT layer and the pooler into mean pooling, so the classifier
    starts from the sentence embedding the encoder was trained for, in a plain BERT.

    Zero queries and keys give every position the same attention to every unmasked token: the
    masked mean of the values, here the hidden states times `scale`. Scaled up, the mean
    outweighs the residual, and LayerNorm undoes the scale. The feed-forward weights are zero,
    and stay zero, as do queries and keys: each one's gradient is a product with the other. The
    pooler starts as tanh of that normalised mean.
    """
    layer, size = model.bert.encoder.layer[-1], model.config.hidden_size
    identity = torch.eye(size)
    with torch.no_grad():
        linears = {
            layer.attention.self.query: 0.0,
            layer.attention.self.key: 0.0,
            layer.attention.self.value: scale,
            layer.attention.output.dense: 1.0,
            layer.intermediate.dense: 0.0,
            layer.output.dense: 0.0,
            model.bert.pooler.dense: 1.0,
        }
        for linear, factor in linears.items():
            linear.bias.zero_()
            if linear.weight.shape == identity.shape:
                linear.weight.copy_(identity * factor)
            else:
                linear.weight.zero_()
        for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()


def start_at_the_prior(model: Classifier, targets: np.ndarray, problem_type: str) -> None:
    """Set the output layer's biases to the training labels' log-odds (multi-label) or log
    frequencies (single-label). From zero, Adam would spend thousands of steps moving the biases
    of rare labels there, one learning rate at a time, before learning anything else."""
    output = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m.out_features == targets.shape[1]
    ][-1]
    frequency = np.clip(targets.mean(axis=0), 1e-4, 1 - 1e-4)
    odds = frequency / (1 - frequency) if problem_type == MULTI_LABEL else frequency
    with torch.no_grad():
        output.bias.copy_(torch.from_numpy(np.log(odds).astype(np.float32)))


def _round_to_half(model: Classifier) -> None:
    """Weights as float16 would store them, kept in float32."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


@dataclass(frozen=True)
class _Data:
    """The splits, tokenised once: the training texts (the first `limit`, chosen at random,
    when limited) and their targets, and validation and test."""

    splits: dict[str, LabelledSplit]
    problem_type: str
    train: _Encoded
    train_targets: npt.NDArray[np.float32]
    scored: dict[str, _Encoded]  # validation and test

    @property
    def labels(self) -> tuple[str, ...]:
        return self.splits["train"].labels

    @classmethod
    def load(
        cls, data: str, tokenizer: Any, settings: FinetuneSettings, generator: np.random.Generator
    ) -> _Data:
        splits = {name: load_split(data, name) for name in ("train", "validation", "test")}
        train = splits["train"]
        chosen = np.arange(len(train.texts))
        if settings.limit:
            chosen = np.sort(generator.permutation(len(chosen))[: settings.limit])
        length = tokenizer.model_max_length
        return cls(
            splits,
            problem_type_of(train),
            _Encoded.of(tokenizer, [train.texts[i] for i in chosen], length),
            train.targets[chosen].astype(np.float32),
            {name: _Encoded.of(tokenizer, splits[name].texts, length) for name in SCORED},
        )


SCORED = ("validation", "test")


def _tokenizer(location: str, max_length: int) -> Any:
    """The base's fast tokenizer, truncating at `max_length`, never past the encoder's limit."""
    tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True)
    tokenizer.model_max_length = min(max_length, tokenizer.model_max_length)
    return tokenizer


def _classifier(location: str, data: _Data, pooling: str) -> Classifier:
    """The base with a classification head for the data's labels, its biases at their prior."""
    labels = data.labels
    config = AutoConfig.from_pretrained(
        location,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type=data.problem_type,
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        location, config=mean_pooling_config(config, pooling), dtype=torch.float32
    )
    if pooling == "mean":
        make_mean_pooling_layer(model)
    start_at_the_prior(model, data.train_targets, data.problem_type)
    return model


def _loss(problem_type: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if problem_type == MULTI_LABEL:
        return torch.nn.BCEWithLogitsLoss()
    return lambda logits, y: torch.nn.functional.cross_entropy(logits, y.argmax(dim=1))


def _train(
    model: Classifier,
    data: _Data,
    settings: FinetuneSettings,
    generator: np.random.Generator,
    log: Callable[[str], None],
    progress: bool,
) -> tuple[list[EpochResult], dict[str, torch.Tensor]]:
    """Every epoch, scored on validation; their results, and the best epoch's weights."""
    steps_per_epoch = -(-len(data.train.lengths) // settings.batch_size)
    optimiser = _optimiser(model, settings)
    schedule = get_linear_schedule_with_warmup(
        optimiser,
        int(settings.warmup * steps_per_epoch * settings.epochs),
        steps_per_epoch * settings.epochs,
    )
    loss_fn = _loss(data.problem_type)
    targets = torch.from_numpy(data.train_targets)
    history: list[EpochResult] = []
    best: dict[str, torch.Tensor] = {}
    for epoch in range(1, settings.epochs + 1):
        started = time.monotonic()
        model.train()
        batches = _training_batches(data.train.lengths, settings.batch_size, generator)
        bar = tqdm(
            batches,
            desc=f"epoch {epoch}/{settings.epochs}",
            disable=not progress,
            mininterval=10,
            unit="batch",
        )
        total = 0.0
        for step, indices in enumerate(bar, start=1):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.bfloat16):
                logits = model(**data.train.batch(indices)).logits
            loss = loss_fn(logits.float(), targets[indices])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{total / step:.4f}")
        scores = probabilities(model, data.scored["validation"], data.problem_type)
        validation = data.splits["validation"].targets
        _, score = _validation_choice(scores, validation, data.problem_type)
        result = EpochResult(epoch, total / len(batches), score, time.monotonic() - started)
        log(
            f"epoch {epoch}: train loss {result.train_loss:.4f}, validation macro-F1 "
            f"{score:.4f} ({result.seconds / 60:.1f} min)"
        )
        if not history or score > max(e.validation_macro_f1 for e in history):
            best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history.append(result)
    return history, best


def finetune(
    base: str,
    data: str,
    directory: Path,
    settings: FinetuneSettings,
    log: Callable[[str], None] = lambda message: None,
    progress: bool = True,
) -> FinetuneReport:
    """Train, choose the epoch and thresholds on validation, write the model and its report."""
    started = time.monotonic()
    seed_everything(settings.seed)
    generator = np.random.default_rng(settings.seed)
    location = locate(base)
    tokenizer = _tokenizer(location, settings.max_length)
    prepared = _Data.load(data, tokenizer, settings, generator)
    problem_type = prepared.problem_type
    model = _classifier(location, prepared, settings.pooling)
    texts, labels = len(prepared.train.lengths), len(prepared.labels)
    log(f"{texts} training texts, {labels} labels, {problem_type}")

    history, best = _train(model, prepared, settings, generator, log, progress)
    model.load_state_dict(best)
    if settings.half_precision:
        _round_to_half(model)

    scores = {name: probabilities(model, prepared.scored[name], problem_type) for name in SCORED}
    targets = {name: prepared.splits[name].targets for name in SCORED}
    thresholds, _ = _validation_choice(scores["validation"], targets["validation"], problem_type)
    tables = {
        name: evaluate(
            targets[name],
            decide(scores[name], problem_type, thresholds),
            prepared.labels,
            thresholds,
        )
        for name in SCORED
    }
    report = FinetuneReport(
        base,
        str(data),
        problem_type,
        settings,
        tuple(history),
        max(history, key=lambda e: e.validation_macro_f1).epoch,
        time.monotonic() - started,
        tables["validation"],
        tables["test"],
    )
    check = partial(
        _check_written,
        encoded=prepared.scored["validation"],
        expected=scores["validation"],
        problem_type=problem_type,
    )
    _write(model, tokenizer, prepared.labels, thresholds, report, directory, settings, check)
    return report


def _write(
    model: Classifier,
    tokenizer,
    labels: tuple[str, ...],
    thresholds: np.ndarray | None,
    result: FinetuneReport,
    directory: Path,
    settings: FinetuneSettings,
    check: Callable[[Path], None],
) -> None:
    """Staged beside the target and checked there, so a failed write never replaces a model."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".finetune-", dir=directory.parent) as staging:
        staged = Path(staging)
        (model.half() if settings.half_precision else model).save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        if thresholds is not None:
            chosen = {label: float(t) for label, t in zip(labels, thresholds)}
            (staged / THRESHOLDS_FILE).write_text(json.dumps(chosen, indent=2) + "\n")
        (staged / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        (staged / "metrics.md").write_text(result.to_markdown())
        check(staged)
        directory.mkdir(exist_ok=True)
        for item in staged.iterdir():
            item.replace(directory / item.name)


def _check_written(
    directory: Path, encoded: _Encoded, expected: np.ndarray, problem_type: str, texts: int = 256
) -> None:
    """The written directory, loaded in float32 as export loads it, scores as reported."""
    model = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32)
    scores = probabilities(model, encoded.first(texts), problem_type)
    difference = float(np.abs(scores - expected[:texts]).max())
    if not difference <= 1e-5:
        raise ParityError(f"the written model differs from the trained one by {difference:.2e}")
