"""Sentence-transformers encoders, exported whole: transformer, the model's own pooling, and
its normalisation, as its modules.json declares them (all-MiniLM: mean pooling over the
attention mask, then L2 normalisation)."""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import SourceError
from .locate import locate
from .onnx_export import EncoderInputs
from .source import code_identity, refuse_pickles
from .triton_models.tokenizer import ENCODING_FIELDS

if TYPE_CHECKING:  # a heavy import, made only when an encoder is loaded
    from sentence_transformers import SentenceTransformer

EMBEDDING_OUTPUT = "sentence_embedding"


@dataclass
class SentenceEncoder:
    source: str
    model: SentenceTransformer
    input_names: tuple[str, ...]

    @property
    def tokenizer(self) -> Any:  # a transformers tokenizer
        return self.model.tokenizer

    @property
    def max_length(self) -> int:
        length = self.model.max_seq_length
        if length is None:
            raise SourceError(f"{self.source} declares no max_seq_length")
        return int(length)

    @property
    def dimension(self) -> int:
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise SourceError(f"{self.source} declares no embedding dimension")
        return int(dimension)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """The reference embeddings: sentence-transformers' own `encode`."""
        embeddings = self.model.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=progress
        )
        return np.asarray(embeddings, dtype=np.float32)

    def fingerprint(self) -> str:
        """Identifies the encoder's weights and settings, for caching embeddings."""
        digest = hashlib.sha256(f"{self.max_length}|{self.input_names}".encode())
        for tensor in self.model.state_dict().values():
            digest.update(tensor.detach().cpu().numpy().tobytes()[:4096])
        return digest.hexdigest()[:16]


def load_sentence_encoder(
    source: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> SentenceEncoder:
    """The encoder, from safetensors weights unless `allow_pickle`; with `trust_remote_code`,
    only code that can be named (source.code_identity)."""
    from sentence_transformers import SentenceTransformer

    location = locate(source, revision)
    if trust_remote_code:
        code_identity(location, revision)
    refuse_pickles(location, revision, allow_pickle)
    try:
        model = SentenceTransformer(
            location,
            device="cpu",
            revision=revision,
            trust_remote_code=trust_remote_code,
            model_kwargs={"use_safetensors": None if allow_pickle else True},
        )
    except (OSError, ValueError) as error:
        raise SourceError(f"cannot load sentence encoder {source!r}: {error}") from error
    model.eval()
    transformer = model.transformers_model
    if transformer is None:
        raise SourceError(f"{source} has no transformers model to export")
    accepted = inspect.signature(transformer.forward).parameters
    input_names = tuple(
        name
        for name in model.tokenizer.model_input_names
        if name in accepted and name in ENCODING_FIELDS
    )
    if not getattr(model.tokenizer, "is_fast", False):
        raise SourceError(f"{source} has no fast tokenizer (tokenizer.json); the server needs one")
    return SentenceEncoder(source, model, input_names)


class EmbeddingModel(EncoderInputs):
    """A sentence-transformers model whose only output is the sentence embedding."""

    def run(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(inputs)[EMBEDDING_OUTPUT]


def cached_embeddings(
    encoder: SentenceEncoder, texts: list[str], cache_dir: Path | None, progress: bool = True
) -> np.ndarray:
    """Embeddings of `texts`, from `cache_dir` when this encoder has embedded them before."""
    if cache_dir is None:
        return encoder.encode(texts, progress=progress)
    key = hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{encoder.fingerprint()}-{key}.npy"
    if path.exists():
        return np.load(path)
    embeddings = encoder.encode(texts, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, embeddings)
    return embeddings
