"""Labelled emotion datasets as multi-hot label matrices.

Two on-disk formats, recognised by their files:
- go_emotions (simplified): `labels.txt` and `{train,dev,test}.tsv`, rows `text<TAB>ids<TAB>id`,
  CSV-quoted where the text holds quotes.
- dair-ai emotion: `{train,validation,test}.txt`, rows `text;label_name`, six labels.
A hub dataset id also works where the hub is reachable (`datasets` installed).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoclient.errors import EmotritonError
from emoexport.labels import EMOTION_LABELS

# Split name → the file stem each format uses for it.
_GO_EMOTIONS_FILES = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}
_EMOTION_FILES = {"train": "train", "validation": "validation", "dev": "validation", "test": "test"}


class DatasetError(EmotritonError):
    """The dataset cannot be read as a labelled emotion split."""


@dataclass(frozen=True)
class LabelledSplit:
    name: str
    texts: list[str]
    labels: tuple[str, ...]
    targets: np.ndarray  # bool [len(texts), len(labels)]

    def __post_init__(self) -> None:
        if self.targets.shape != (len(self.texts), len(self.labels)):
            raise DatasetError(f"{self.targets.shape} targets for {len(self.texts)} texts")


def _go_emotions(directory: Path, split: str) -> LabelledSplit:
    labels = tuple((directory / "labels.txt").read_text(encoding="utf-8").split())
    path = directory / f"{_GO_EMOTIONS_FILES[split]}.tsv"
    texts, rows = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if len(row) < 2:
                raise DatasetError(f"{path}:{line}: expected text<TAB>label ids")
            texts.append(row[0])
            rows.append([int(i) for i in row[1].split(",")])
    targets = np.zeros((len(texts), len(labels)), dtype=bool)
    for index, ids in enumerate(rows):
        targets[index, ids] = True
    return LabelledSplit(f"{directory.name}/{path.name}", texts, labels, targets)


def _emotion(directory: Path, split: str) -> LabelledSplit:
    path = directory / f"{_EMOTION_FILES[split]}.txt"
    texts, ids = [], []
    for line, row in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text, _, label = row.rpartition(";")
        if label not in EMOTION_LABELS:
            raise DatasetError(f"{path}:{line}: unknown label {label!r}")
        texts.append(text)
        ids.append(EMOTION_LABELS.index(label))
    targets = np.zeros((len(texts), len(EMOTION_LABELS)), dtype=bool)
    targets[np.arange(len(ids)), ids] = True
    return LabelledSplit(f"{directory.name}/{path.name}", texts, EMOTION_LABELS, targets)


def _hub(dataset_id: str, split: str) -> LabelledSplit:
    """A hub dataset with a `text` column and a multi-label `labels` or single `label` column."""
    try:
        import datasets
    except ImportError as error:
        raise DatasetError(
            f"{dataset_id!r} is not a directory; hub datasets need `datasets`"
        ) from error
    config = "simplified" if dataset_id.endswith("go_emotions") else None
    data = datasets.load_dataset(dataset_id, config, split=split)
    column = "labels" if "labels" in data.features else "label"
    feature = data.features[column]
    names = tuple((feature.feature if column == "labels" else feature).names)
    targets = np.zeros((len(data), len(names)), dtype=bool)
    for index, value in enumerate(data[column]):
        targets[index, value] = True
    return LabelledSplit(f"{dataset_id}/{split}", list(data["text"]), names, targets)


def load_split(source: str | Path, split: str) -> LabelledSplit:
    """Split `split` (train, validation/dev, test) of the dataset at `source`."""
    directory = Path(source)
    if split not in _GO_EMOTIONS_FILES:
        raise DatasetError(f"unknown split {split!r}: use train, validation (dev) or test")
    if (directory / "labels.txt").is_file():
        return _go_emotions(directory, split)
    if (directory / "train.txt").is_file():
        return _emotion(directory, split)
    if directory.exists():
        raise DatasetError(f"{directory} holds neither go_emotions TSVs nor dair-ai emotion files")
    return _hub(str(source), split)
