"""Fit a classification head on sentence embeddings and write it in seed 001's format.

The head is linear or has one hidden layer; either way its ONNX interface is the seed's: input
`logits` [batch, dim], one [batch, 2] (P(neg), P(pos)) output per label. Per-label thresholds
maximise F1 on the validation split; the test split is only ever reported on.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from emoexport.errors import ParityError
from emoexport.head import THRESHOLDS_FILE, load_head
from emoexport.onnx_export import OPSET
from emoexport.sentence_encoder import cached_embeddings, load_sentence_encoder

from .datasets import load_split
from .metrics import Report, evaluate, f1_scores
from .settings import HeadSettings

THRESHOLD_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


class HeadNet(torch.nn.Module):
    """Embedding → one logit per label."""

    def __init__(self, dim: int, num_labels: int, settings: HeadSettings) -> None:
        super().__init__()
        if settings.hidden:
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(dim, settings.hidden),
                torch.nn.GELU(),
                torch.nn.Dropout(settings.dropout),
                torch.nn.Linear(settings.hidden, num_labels),
            )
        else:
            self.layers = torch.nn.Sequential(
                torch.nn.Dropout(settings.dropout), torch.nn.Linear(dim, num_labels)
            )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        self.eval()
        with torch.no_grad():
            return torch.sigmoid(self(torch.from_numpy(embeddings))).numpy()


class SeedFormatHead(torch.nn.Module):
    """The trained head with seed 001's outputs: one (P(neg), P(pos)) pair per label."""

    def __init__(self, net: HeadNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        positive = torch.sigmoid(self.net(logits))
        return tuple(torch.stack([1 - p, p], dim=1) for p in positive.unbind(dim=1))


def train(
    train_x: np.ndarray,
    train_y: np.ndarray,
    dev_x: np.ndarray,
    dev_y: np.ndarray,
    settings: HeadSettings,
    log: Callable[[str], None] = lambda message: None,
) -> HeadNet:
    """Binary cross-entropy per label; keeps the epoch with the lowest validation loss."""
    torch.manual_seed(settings.seed)
    net = HeadNet(train_x.shape[1], train_y.shape[1], settings)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x, y = torch.from_numpy(train_x), torch.from_numpy(train_y.astype(np.float32))
    dev_inputs, dev_targets = torch.from_numpy(dev_x), torch.from_numpy(dev_y.astype(np.float32))
    best_loss, stale = float("inf"), 0
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    for epoch in range(1, settings.epochs + 1):
        net.train()
        for batch in torch.randperm(len(x)).split(settings.batch_size):
            optimiser.zero_grad()
            loss_fn(net(x[batch]), y[batch]).backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            dev_loss = loss_fn(net(dev_inputs), dev_targets).item()
        log(f"epoch {epoch:3d}: validation loss {dev_loss:.5f}")
        if dev_loss < best_loss - 1e-5:
            best_loss, stale = dev_loss, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break
    net.load_state_dict(best_state)
    return net.eval()


def tune_thresholds(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per label, the grid threshold with the best F1 (the lowest of equals)."""
    targets = targets.astype(bool)
    # [grid, n, labels] decisions → [grid, labels] F1.
    scores = f1_scores(targets[None], probabilities[None] >= THRESHOLD_GRID[:, None, None])
    return THRESHOLD_GRID[scores.argmax(axis=0)]


def write_head(
    net: HeadNet, labels: tuple[str, ...], thresholds: np.ndarray, directory: Path
) -> Path:
    """model.onnx and thresholds.json in seed 001's format."""
    directory.mkdir(parents=True, exist_ok=True)
    sample = torch.zeros(2, _input_dim(net))
    torch.onnx.export(
        SeedFormatHead(net).eval(),
        (sample,),
        str(directory / "model.onnx"),
        input_names=["logits"],
        output_names=list(labels),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    thresholds_json = {label: float(t) for label, t in zip(labels, thresholds)}
    (directory / THRESHOLDS_FILE).write_text(json.dumps(thresholds_json, indent=2) + "\n")
    return directory


def _input_dim(net: HeadNet) -> int:
    return next(m for m in net.layers if isinstance(m, torch.nn.Linear)).in_features


@dataclass(frozen=True)
class HeadReport:
    """What a trained head scores, with validation-tuned thresholds, on validation and test."""

    encoder: str
    data: str
    settings: HeadSettings
    validation: Report
    test: Report

    def to_dict(self) -> dict:
        return {
            "encoder": self.encoder,
            "data": self.data,
            "settings": asdict(self.settings),
            "validation": self.validation.to_dict(),
            "test": self.test.to_dict(),
        }

    def _architecture(self) -> str:
        return f"{self.settings.hidden} hidden units" if self.settings.hidden else "linear"

    def to_markdown(self) -> str:
        return (
            f"# Head metrics\n\nEncoder: `{self.encoder}`. Data: `{self.data}`. "
            f"Head: {self._architecture()}."
            " Thresholds were tuned per label for F1 on the validation split only.\n\n"
            + self.test.to_markdown("Test split (dev-tuned thresholds)")
            + "\n"
            + self.validation.to_markdown("Validation split (the thresholds were tuned here)")
        )


def report(
    net: HeadNet,
    thresholds: np.ndarray,
    labels: tuple[str, ...],
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, Report]:
    """The metrics table of each split, deciding with `thresholds`."""
    return {
        name: evaluate(targets, net.probabilities(x) >= thresholds, labels, thresholds)
        for name, (x, targets) in splits.items()
    }


def fit_head(
    encoder_source: str,
    data_source: str,
    directory: Path,
    settings: HeadSettings,
    cache_dir: Path | None,
    log: Callable[[str], None] = lambda message: None,
) -> HeadReport:
    """Embed the dataset, train, tune thresholds on validation, write the head and its report."""
    encoder = load_sentence_encoder(encoder_source)
    splits = {name: load_split(data_source, name) for name in ("train", "validation", "test")}
    labels = splits["train"].labels
    data = {}
    for name, split in splits.items():
        log(f"embedding {len(split.texts)} {name} texts with {encoder_source}")
        data[name] = (cached_embeddings(encoder, split.texts, cache_dir), split.targets)
    net = train(*data["train"], *data["validation"], settings, log)
    val_x, val_y = data["validation"]
    thresholds = tune_thresholds(net.probabilities(val_x), val_y)
    tables = report(net, thresholds, labels, {k: data[k] for k in ("validation", "test")})
    result = HeadReport(encoder_source, data_source, settings, tables["validation"], tables["test"])
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the target, so a head that fails its check never replaces anything.
    with tempfile.TemporaryDirectory(prefix=".head-", dir=directory.parent) as staging:
        staged = write_head(net, labels, thresholds, Path(staging))
        # The written ONNX must reproduce the trained network.
        written = load_head(str(staged)).positive_probabilities(val_x)
        difference = float(np.abs(written - net.probabilities(val_x)).max())
        if not difference <= 1e-5:
            raise ParityError(f"the written head differs from the trained one by {difference:.2e}")
        (staged / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        (staged / "metrics.md").write_text(result.to_markdown())
        directory.mkdir(exist_ok=True)
        for item in staged.iterdir():
            item.replace(directory / item.name)
    return result
