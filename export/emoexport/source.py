"""Load a Hugging Face classifier and its fast tokenizer, from the hub or a directory, the way
its recipe says."""

from __future__ import annotations

import hashlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
)

from .errors import SourceError
from .locate import locate
from .recipes import Recipe, labels_of, recipe_named, select_recipe
from .triton_models.tokenizer import ENCODING_FIELDS

# Transformers' stand-in for "this tokenizer declares no length limit".
_NO_LIMIT = 1_000_000
_LOADERS = {"sequence-classification": AutoModelForSequenceClassification, "auto-model": AutoModel}


LogitsSelector = int | str
"""Where the logits are in a model's output: an index into a tuple, or a field name."""


class LogitsNotFoundError(SourceError):
    """The model's output does not say which tensor holds the logits."""


def find_logits(output: object, requested: int | str | None, num_labels: int) -> LogitsSelector:
    """Which part of a forward pass's `output` holds the logits. The rule, in order:

    1. `requested` (--logits-output, or the recipe's): a tuple index, or a field name;
    2. the `logits` field of a transformers ModelOutput;
    3. in a tuple, the one float tensor of shape [batch, num_labels].
    """
    if requested is not None:
        selector: LogitsSelector = int(requested) if str(requested).isdigit() else str(requested)
        try:
            tensor = select_logits(output, selector)
        except (IndexError, KeyError, AttributeError, TypeError):
            tensor = None
        if not isinstance(tensor, torch.Tensor):
            raise LogitsNotFoundError(
                f"--logits-output {requested!r}: the output has no tensor there"
            )
        return selector
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return "logits"
    if isinstance(output, (tuple, list)):
        candidates = [
            index
            for index, item in enumerate(output)
            if isinstance(item, torch.Tensor)
            and item.is_floating_point()
            and item.dim() == 2
            and item.shape[-1] == num_labels
        ]
        if len(candidates) == 1:
            return candidates[0]
        found = f"{len(candidates)} [batch, {num_labels}] tensors" if candidates else "none"
        raise LogitsNotFoundError(
            f"the model returns a {len(output)}-tuple and the logits cannot be told apart "
            f"({found} at indices {candidates}); pass --logits-output INDEX"
        )
    raise LogitsNotFoundError(
        f"the model returns {type(output).__name__} without a logits field; pass --logits-output"
    )


def select_logits(output: Any, selector: LogitsSelector) -> torch.Tensor:
    if isinstance(selector, int):
        return output[selector]
    if isinstance(output, dict) and selector in output:
        return output[selector]
    return getattr(output, selector)


@dataclass
class HFClassifier:
    source: str
    raw_config: dict[str, Any]  # config.json as written, read without running the model's code
    recipe: Recipe
    model: torch.nn.Module
    tokenizer: Any
    input_names: tuple[str, ...]
    logits_output: LogitsSelector
    own_code: str | None = None  # the model code that ran (code_identity), if it has its own

    def max_length(self, requested: int | None) -> int:
        """Truncation length: --max-length, else the recipe's, else the tokenizer's limit."""
        declared = self.tokenizer.model_max_length
        limit = declared if declared < _NO_LIMIT else None
        chosen = requested or self.recipe.max_length
        if chosen is None:
            if limit is None:
                raise SourceError(
                    f"{self.source}'s tokenizer declares no max length: pass --max-length"
                )
            return limit
        if chosen < 2 or (limit is not None and chosen > limit):
            raise SourceError(f"--max-length {chosen} is outside 2..{limit} for {self.source}")
        return chosen


def read_config(source: str, revision: str | None = None) -> dict[str, Any]:
    """config.json as a dict; runs no code the model ships."""
    where = "the directory" if Path(source).is_dir() else "the Hugging Face hub"
    if Path(source).is_dir() and not (Path(source) / "config.json").is_file():
        raise SourceError(f"cannot load {source!r} from the directory: it has no config.json")
    try:
        config, _ = PretrainedConfig.get_config_dict(source, revision=revision)
    except (OSError, ValueError) as error:
        raise SourceError(f"cannot load {source!r} from {where}: {error}") from error
    return config


def load_classifier(
    source: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    recipe: str | None = None,
    logits_output: str | None = None,
) -> HFClassifier:
    location = locate(source, revision)
    raw = read_config(location, revision)
    chosen = recipe_named(recipe) if recipe else select_recipe(raw, source)
    own_code = None
    if "auto_map" in raw:
        if not trust_remote_code:
            code = ", ".join(sorted(set(raw["auto_map"].values())))
            raise SourceError(
                f"{source} ships its own model code ({code}), which runs only with "
                "--trust-remote-code; read that code before you pass it"
            )
        own_code = code_identity(location, revision)
    refuse_pickles(location, revision, allow_pickle)
    options = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(location, **options)
        tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True, **options)
        # float32 whatever the stored weights are: the ONNX graph and the parity gate are fp32.
        model = _LOADERS[chosen.loader].from_pretrained(
            location,
            config=config,
            dtype=torch.float32,
            use_safetensors=None if allow_pickle else True,
            **options,
        )
    except (OSError, ValueError) as error:  # transformers raises both for unusable sources
        raise SourceError(f"cannot load {source!r} with recipe {chosen.name}: {error}") from error
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
    model.eval()
    sample = tokenizer(
        ["a first text", "and a second, longer one"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        output = model(**{name: sample[name] for name in input_names})
    selector = find_logits(output, logits_output or chosen.logits_output, len(labels_of(raw)))
    return HFClassifier(source, raw, chosen, model, tokenizer, input_names, selector, own_code)


_COMMIT = re.compile(r"^[0-9a-f]{40}$")
PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json")
SAFE = ("model.safetensors", "model.safetensors.index.json")


def code_identity(location: str, revision: str | None) -> str:
    """Which model code runs: a hub model's commit (required: a branch or tag can move to other
    code after it was read), or the sha256 of a directory's Python files."""
    directory = Path(location)
    if directory.is_dir():
        digest = hashlib.sha256()
        for path in sorted(directory.rglob("*.py")):
            digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
        return f"sha256:{digest.hexdigest()}"
    if revision is None or not _COMMIT.match(revision):
        raise SourceError(
            f"{location} runs its own code: pin the code that runs with --revision COMMIT (the "
            f"40-character commit id you read), not {revision or 'its default branch'}"
        )
    return f"{location}@{revision}"


def refuse_pickles(location: str, revision: str | None, allow_pickle: bool) -> None:
    """SourceError for a model whose only weights are pickles, unless `allow_pickle`: loading a
    pickle runs whatever code it names (CVE-2025-32434 was torch.load's own guard failing)."""
    if allow_pickle:
        return
    directory = Path(location)
    if directory.is_dir():
        names = {path.name for path in directory.iterdir()}
    else:
        from huggingface_hub import list_repo_files

        try:
            names = set(list_repo_files(location, revision=revision))
        except Exception as error:  # the hub client's own errors, and its transport's
            raise SourceError(f"cannot list {location}'s files on the hub: {error}") from None
    if names.isdisjoint(SAFE) and not names.isdisjoint(PICKLED):
        pickles = ", ".join(sorted(names & set(PICKLED)))
        raise SourceError(
            f"{location} has its weights only as a pickle ({pickles}), which runs code as it "
            "loads: convert it to safetensors, or pass --allow-pickle if you trust it"
        )
