"""The seed model cards' evaluation table: per-label binary metrics, macro and support-weighted
averages, and exact-match accuracy over whole label sets. numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LabelMetrics:
    label: str
    accuracy: float
    precision: float
    recall: float
    f1: float
    mcc: float
    support: int
    threshold: float | None


@dataclass(frozen=True)
class Averages:
    precision: float
    recall: float
    f1: float

    def row(self, name: str) -> str:
        return f"| {name} | {self.precision:.3f} | {self.recall:.3f} | {self.f1:.3f} |"


@dataclass(frozen=True)
class Report:
    examples: int
    per_label: tuple[LabelMetrics, ...]
    macro: Averages
    weighted: Averages
    exact_match: float

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self, title: str = "") -> str:
        rows = [
            "| label | accuracy | precision | recall | f1 | mcc | support | threshold |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for m in self.per_label:
            threshold = "argmax" if m.threshold is None else f"{m.threshold:.2f}"
            rows.append(
                f"| {m.label} | {m.accuracy:.3f} | {m.precision:.3f} | {m.recall:.3f} | "
                f"{m.f1:.3f} | {m.mcc:.3f} | {m.support} | {threshold} |"
            )
        summary = [
            "",
            "| average | precision | recall | f1 |",
            "| --- | ---: | ---: | ---: |",
            self.macro.row("macro"),
            self.weighted.row("weighted by support"),
            "",
            f"Exact match (whole label set) over {self.examples} texts: {self.exact_match:.3f}",
        ]
        heading = [f"### {title}", ""] if title else []
        return "\n".join(heading + rows + summary) + "\n"


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (as the cards report it)."""
    return np.divide(
        numerator, denominator, out=np.zeros_like(numerator, dtype=float), where=denominator > 0
    )


def f1_scores(targets: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-label F1 of boolean [n, labels] matrices (the last axes)."""
    tp = (targets & predicted).sum(axis=-2).astype(float)
    fp = (~targets & predicted).sum(axis=-2).astype(float)
    fn = (targets & ~predicted).sum(axis=-2).astype(float)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def evaluate(
    targets: np.ndarray,
    predicted: np.ndarray,
    labels: Sequence[str],
    thresholds: Sequence[float] | np.ndarray | None = None,
) -> Report:
    """The table for boolean [n, labels] targets and predictions."""
    targets, predicted = targets.astype(bool), predicted.astype(bool)
    tp = (targets & predicted).sum(axis=0).astype(float)
    fp = (~targets & predicted).sum(axis=0).astype(float)
    fn = (targets & ~predicted).sum(axis=0).astype(float)
    tn = (~targets & ~predicted).sum(axis=0).astype(float)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    mcc = _ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    accuracy = (tp + tn) / len(targets)
    support = targets.sum(axis=0)
    per_label = tuple(
        LabelMetrics(
            label=label,
            accuracy=float(accuracy[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            mcc=float(mcc[i]),
            support=int(support[i]),
            threshold=None if thresholds is None else float(thresholds[i]),
        )
        for i, label in enumerate(labels)
    )
    weights = support / max(support.sum(), 1)
    return Report(
        examples=len(targets),
        per_label=per_label,
        macro=Averages(float(precision.mean()), float(recall.mean()), float(f1.mean())),
        weighted=Averages(float(weights @ precision), float(weights @ recall), float(weights @ f1)),
        exact_match=float((targets == predicted).all(axis=1).mean()),
    )
