"""Evaluate a model on a labelled split: served through emoclient (the seed cards' table), or
as the export's quality gate compares an fp32 and a reduced-precision pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emoclient import Client
from emoexport.quality import Classify, QualityReport

from .datasets import DatasetError, LabelledSplit, load_split
from .metrics import Report, evaluate


def served_predictions(
    client: Client,
    model: str,
    split: LabelledSplit,
    chunk: int = 1024,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> np.ndarray:
    """bool [texts, split labels]: the served decisions, columns in the split's label order."""
    _label_columns(split, client.model(model).labels, f"model {model!r}")
    rows = []
    for start in range(0, len(split.texts), chunk):
        for result in client.classify(split.texts[start : start + chunk], model=model):
            chosen = set(result.labels)
            rows.append([label in chosen for label in split.labels])
        progress(min(start + chunk, len(split.texts)), len(split.texts))
    return np.array(rows, dtype=bool).reshape(len(split.texts), len(split.labels))


def evaluate_served(
    client: Client,
    model: str,
    split: LabelledSplit,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Report:
    info = client.model(model)
    predicted = served_predictions(client, model, split, progress=progress)
    thresholds = None if info.thresholds is None else [info.thresholds[x] for x in split.labels]
    return evaluate(split.targets, predicted, split.labels, thresholds)


def _label_columns(split: LabelledSplit, labels: Sequence[str], what: str) -> list[int]:
    """Where each of the split's labels is among a model's `labels`."""
    missing = [label for label in split.labels if label not in labels]
    if missing:
        raise DatasetError(f"{what} has no label(s) {missing} that {split.name} uses")
    return [list(labels).index(label) for label in split.labels]


@dataclass(frozen=True)
class SplitQualityCheck:
    """The export's quality gate: macro-F1 of the decisions on `decides` (a validation split),
    and the same figures on `reports` (test), which are shown and decide nothing."""

    decides: LabelledSplit
    reports: LabelledSplit | None = None

    @classmethod
    def of(cls, source: str | Path) -> SplitQualityCheck:
        """Gate on `source`'s validation split; report its test split."""
        return cls(load_split(source, "validation"), load_split(source, "test"))

    def compare(
        self, reference: Classify, candidate: Classify, labels: Sequence[str]
    ) -> QualityReport:
        held_out = None
        if self.reports is not None:
            held_out = _macro_f1(self.reports, reference, candidate, labels)
        return replace(_macro_f1(self.decides, reference, candidate, labels), held_out=held_out)


def _macro_f1(
    split: LabelledSplit, reference: Classify, candidate: Classify, labels: Sequence[str]
) -> QualityReport:
    columns = _label_columns(split, labels, "the exported model")
    scores = [
        evaluate(split.targets, classify(split.texts)[:, columns], split.labels)
        for classify in (reference, candidate)
    ]
    return QualityReport(
        metric="macro-F1",
        data=split.name,
        texts=len(split.texts),
        reference=scores[0].macro.f1,
        candidate=scores[1].macro.f1,
    )
