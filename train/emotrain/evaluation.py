"""Evaluate a served model through emoclient on a labelled split: the seed cards' table."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emoclient import Client

from .datasets import DatasetError, LabelledSplit
from .metrics import Report, evaluate


def served_predictions(
    client: Client,
    model: str,
    split: LabelledSplit,
    chunk: int = 1024,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> np.ndarray:
    """bool [texts, split labels]: the served decisions, columns in the split's label order."""
    served_labels = set(client.model(model).labels)
    missing = [label for label in split.labels if label not in served_labels]
    if missing:
        raise DatasetError(f"model {model!r} has no label(s) {missing} that {split.name} uses")
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
