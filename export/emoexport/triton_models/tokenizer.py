"""Triton Python model: texts → the encoder's input tensors, with `tokenizers` (Rust).

The texts of all the requests in one dynamic batch are tokenised in one call; each request's
texts are padded to that request's longest text only, because the encoder batches ragged
inputs (emoexport.ragged) and would only compute the extra padding. Text beyond `max_length`
tokens is truncated, and a long text is only tokenised as far as its first `max_length` tokens
need (`head_of`), so its cost does not grow with its bytes, whatever its characters. A request
whose text tensor cannot be read, or with a text that is not UTF-8 or longer than
`max_text_bytes`, gets an error response of its own; the other requests of the batch are served
as usual.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton: unit tests and the export parity gate
    pb_utils = None

# The config parameters this model reads; export writes them.
MAX_LENGTH = "max_length"
PAD_TOKEN = "pad_token"
PAD_ID = "pad_id"
MAX_TEXT_BYTES = "max_text_bytes"
TOKENIZER_FILE = "tokenizer.json"

# Encoder input name → the attribute of `tokenizers.Encoding` that holds it.
ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


# A long text's head is first cut at this many characters per token of max_length, then 4x
# longer, up to the cap; past the cap a text with no whitespace is cut at the cap regardless.
_HEAD_CHARS_PER_TOKEN = 16
_HEAD_CAP_CHARS_PER_TOKEN = 1024
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")


class InvalidText(ValueError):
    """A text of a request could not be decoded."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"text {index}: {reason}")
        self.index = index


def load_tokenizer(path: str | Path, max_length: int, pad_token: str, pad_id: int) -> Tokenizer:
    """tokenizer.json, truncating to max_length and padding to the longest text of a batch."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer


class TextEncoder:
    """Texts of one request → the encoder's input tensors, as this model's config says."""

    def __init__(self, parameters: dict[str, str], version_directory: Path, outputs: list[str]):
        self.tokenizer = load_tokenizer(
            version_directory / TOKENIZER_FILE,
            max_length=int(parameters[MAX_LENGTH]),
            pad_token=parameters[PAD_TOKEN],
            pad_id=int(parameters[PAD_ID]),
        )
        self.max_text_bytes = int(parameters[MAX_TEXT_BYTES])
        self.outputs = outputs

    def __call__(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        """INT64 [texts, longest] arrays from a BYTES [texts, 1] tensor; InvalidText."""
        return encode(self.tokenizer, decode_texts(raw, self.max_text_bytes), self.outputs)


def decode_texts(raw: np.ndarray, max_text_bytes: int) -> list[str]:
    """UTF-8 texts from a BYTES tensor of shape [batch, 1]."""
    texts = []
    for index, item in enumerate(raw.reshape(-1)):
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        if len(data) > max_text_bytes:
            raise InvalidText(index, f"{len(data)} bytes, over the {max_text_bytes}-byte limit")
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidText(
                index, f"not valid UTF-8 ({error.reason} at byte {error.start})"
            ) from None
    return texts


def head_of(tokenizer: Tokenizer, text: str) -> str:
    """The start of `text` that tokenises, truncated, as the whole text does, so that a text's
    cost is bounded by max_length whatever its length and characters.

    Cut just before a whitespace, a text keeps every token that ends before the cut: the
    pre-tokenizers of BERT's WordPiece and of byte-level BPE never join across whitespace. So
    once the cut text is truncated itself, its tokens are the whole text's first ones. A head
    with no whitespace (CJK, punctuation, one long word) is cut anywhere and kept when it holds
    more than max_length tokens and a head twice as long gives the same ones; past the cap it
    is cut there (only one word longer than the cap could tokenise differently).
    """
    truncation = tokenizer.truncation
    if truncation is None:
        return text
    limit = _HEAD_CHARS_PER_TOKEN * truncation["max_length"]
    cap = _HEAD_CAP_CHARS_PER_TOKEN * truncation["max_length"]
    while len(text) > limit:
        space = _LAST_SPACE.search(text, 0, limit)
        if space is not None:
            if tokenizer.encode(text[: space.start()]).overflowing:
                return text[: space.start()]
        elif limit >= cap or _settled(tokenizer, text[:limit], text[: 2 * limit]):
            return text[:limit]
        limit *= 4
    return text


def _settled(tokenizer: Tokenizer, head: str, longer: str) -> bool:
    """`head` holds more than max_length tokens, the same ones as a head twice as long."""
    encoded = tokenizer.encode(head)
    return bool(encoded.overflowing) and encoded.ids == tokenizer.encode(longer).ids


def encode(tokenizer: Tokenizer, texts: list[str], input_names: list[str]) -> dict[str, np.ndarray]:
    """INT64 [len(texts), longest] arrays, one per encoder input."""
    encodings = tokenizer.encode_batch([head_of(tokenizer, text) for text in texts])
    return {
        name: np.array([getattr(e, ENCODING_FIELDS[name]) for e in encodings], dtype=np.int64)
        for name in input_names
    }


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.text_input = config["input"][0]["name"]
        self.encoder = TextEncoder(
            {key: value["string_value"] for key, value in config["parameters"].items()},
            Path(args["model_repository"]) / args["model_version"],
            [spec["name"] for spec in config["output"]],
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                raw = pb_utils.get_input_tensor_by_name(request, self.text_input).as_numpy()
                encoded = self.encoder(raw)
            except Exception as error:  # InvalidText, or a BYTES tensor that does not parse
                responses.append(
                    pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(
                            f"{self.text_input}: {error}", pb_utils.TritonError.INVALID_ARG
                        )
                    )
                )
                continue
            tensors = [pb_utils.Tensor(name, array) for name, array in encoded.items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
