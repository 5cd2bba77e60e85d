"""Load a Hugging Face sequence classifier and its fast tokenizer, from the hub or a directory."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from .errors import SourceError
from .triton_models.tokenizer import ENCODING_FIELDS

# Transformers' stand-in for "this tokenizer declares no length limit".
_NO_LIMIT = 1_000_000


@dataclass
class HFClassifier:
    source: str
    config: Any
    model: torch.nn.Module
    tokenizer: Any
    input_names: tuple[str, ...]

    def max_length(self, requested: int | None) -> int:
        """Truncation length: the tokenizer's declared limit unless a smaller one is asked for."""
        declared = self.tokenizer.model_max_length
        limit = declared if declared < _NO_LIMIT else None
        if requested is None:
            if limit is None:
                raise SourceError(
                    f"{self.source}'s tokenizer declares no max length: pass --max-length"
                )
            return limit
        if requested < 2 or (limit is not None and requested > limit):
            raise SourceError(f"--max-length {requested} is outside 2..{limit} for {self.source}")
        return requested


def load_classifier(
    source: str, *, revision: str | None = None, trust_remote_code: bool = False
) -> HFClassifier:
    options = {"revision": revision, "trust_remote_code": trust_remote_code}
    where = "the directory" if Path(source).is_dir() else "the Hugging Face hub"
    try:
        config = AutoConfig.from_pretrained(source, **options)
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, **options)
        model = AutoModelForSequenceClassification.from_pretrained(source, config=config, **options)
    except (OSError, ValueError) as error:  # transformers raises both for unusable sources
        raise SourceError(f"cannot load {source!r} from {where}: {error}") from error
    if not tokenizer.is_fast:
        raise SourceError(f"{source} has no fast tokenizer (tokenizer.json); the server needs one")
    if tokenizer.pad_token is None:
        raise SourceError(f"{source}'s tokenizer has no padding token")
    accepted = inspect.signature(model.forward).parameters
    input_names = tuple(
        name for name in tokenizer.model_input_names if name in accepted and name in ENCODING_FIELDS
    )
    if "input_ids" not in input_names:
        raise SourceError(f"{source}'s model does not take input_ids")
    return HFClassifier(source, config, model.eval(), tokenizer, input_names)
