"""The texts a load test sends."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LoadTestError

DEFAULT_CORPUS = Path(__file__).with_name("corpus.txt")


def read_corpus(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The non-empty lines of `path`, one text each."""
    try:
        content = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise LoadTestError(f"corpus {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise LoadTestError(f"corpus {path} is not UTF-8 text: {error.reason}") from None
    texts = tuple(line for line in content.splitlines() if line)
    if not texts:
        raise LoadTestError(f"corpus {path} has no texts")
    return texts


def read_texts(data: Path | None, limit: int) -> list[str]:
    """The first `limit` texts of go_emotions' test split (a folder holding test.tsv, or a TSV
    file, text first), or of a file of one text per line; the loadtest corpus by default."""
    path = DEFAULT_CORPUS if data is None else data
    if path.is_dir():
        path = path / "test.tsv"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".tsv":
        lines = [line.split("\t")[0] for line in lines]
    return lines[:limit]
