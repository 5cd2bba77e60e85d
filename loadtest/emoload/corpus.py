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
