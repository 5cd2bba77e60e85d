"""Small labelled datasets written on the spot, in go_emotions' layout, whose words give their
labels away (train-head and finetune learn them in seconds)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

LABELS = ("joy", "anger", "neutral")
WORDS = {"joy": "happy glad wonderful", "anger": "furious angry hate", "neutral": "the meeting is"}


def write_dataset(directory: Path, seed: int = 0) -> Path:
    """go_emotions' layout: labels.txt, and TSV rows `text<TAB>label ids<TAB>id` per split."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    (directory / "labels.txt").write_text("\n".join(LABELS))
    for split, rows in (("train", 300), ("dev", 80), ("test", 80)):
        with (directory / f"{split}.tsv").open("w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t")
            for row in range(rows):
                ids = sorted(set(rng.choice(3, size=rng.integers(1, 3)).tolist()))
                words = " ".join(
                    rng.choice(WORDS[LABELS[i]].split()) for i in ids for _ in range(3)
                )
                writer.writerow([f'{words} "quoted" {row}', ",".join(map(str, ids)), f"id{row}"])
    return directory


def with_another_test_split(data: Path, directory: Path) -> Path:
    """A copy of dataset `data` in `directory` whose test split is another one: training and
    validation unchanged."""
    copy = directory / "data"
    copy.mkdir()
    for name in ("labels.txt", "train.tsv", "dev.tsv"):
        (copy / name).write_bytes((data / name).read_bytes())
    (copy / "test.tsv").write_bytes(
        (write_dataset(directory / "other", seed=7) / "test.tsv").read_bytes()
    )
    return copy
