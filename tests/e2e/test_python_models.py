"""The tokenizer Triton Python model of an exported model, driven as Triton drives it: padding,
truncation as Hugging Face's tokenizer does it, and each bad request failing alone."""

from __future__ import annotations

import random

import numpy as np
import pytest
from transformers import AutoTokenizer

from emoexport.triton_models import postprocess, tokenizer

from .. import fake_pb_utils
from ..support import texts_tensor, triton_args
from .models import MAX_LENGTH


@pytest.fixture(autouse=True)
def triton_utils(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer, "pb_utils", fake_pb_utils)
    monkeypatch.setattr(postprocess, "pb_utils", fake_pb_utils)


@pytest.fixture
def tokenizer_model(exported) -> tokenizer.TritonPythonModel:
    model = tokenizer.TritonPythonModel()
    model.initialize(triton_args(exported.models[0]))
    return model


def test_tokenizer_pads_each_request_to_its_own_longest_text(tokenizer_model) -> None:
    requests = [
        fake_pb_utils.InferenceRequest(TEXT=texts_tensor("hi")),
        fake_pb_utils.InferenceRequest(
            TEXT=texts_tensor("a much longer text than the first one", "x")
        ),
    ]
    first, second = tokenizer_model.execute(requests)
    assert first.error is None and second.error is None
    # The encoder batches ragged inputs: padding "hi" to the other request would only cost.
    assert first.tensors["attention_mask"].all()
    assert first.tensors["input_ids"].shape[1] < second.tensors["input_ids"].shape[1]
    assert second.tensors["input_ids"].shape[0] == 2
    # The padding is masked out: the short text has fewer attended tokens than the long one.
    assert first.tensors["attention_mask"].sum() < second.tensors["attention_mask"][0].sum()
    assert first.tensors["input_ids"].dtype == np.int64


def test_tokenizer_matches_hugging_face_and_truncates(tokenizer_model, served_models) -> None:
    reference = AutoTokenizer.from_pretrained(served_models["go_emotions"].directory)
    texts = ["Thank you so much!", "", "   ", "é 😤 ü", "word " * 500]
    (response,) = tokenizer_model.execute(
        [fake_pb_utils.InferenceRequest(TEXT=texts_tensor(*texts))]
    )
    ids, mask = response.tensors["input_ids"], response.tensors["attention_mask"]
    assert ids.shape[1] == MAX_LENGTH  # the long text is cut to max_length
    for row, text in enumerate(texts):
        expected = reference(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        assert ids[row, : mask[row].sum()].tolist() == expected
    assert mask[1].sum() == 2  # the empty text is its special tokens alone


def test_invalid_utf8_fails_only_its_own_request(tokenizer_model) -> None:
    requests = [
        fake_pb_utils.InferenceRequest(TEXT=texts_tensor("fine")),
        fake_pb_utils.InferenceRequest(TEXT=texts_tensor("ok", b"\xff\xfe broken")),
        fake_pb_utils.InferenceRequest(TEXT=texts_tensor("also fine")),
    ]
    good, bad, also_good = tokenizer_model.execute(requests)
    assert bad.error is not None and bad.error.code == fake_pb_utils.TritonError.INVALID_ARG
    assert "text 1" in bad.error.message() and "UTF-8" in bad.error.message()
    assert good.error is None and also_good.error is None
    assert good.tensors["input_ids"].shape[0] == 1


class Unreadable:
    """A BYTES tensor whose length prefixes point past its data: the stub cannot parse it."""

    def name(self) -> str:
        return "TEXT"

    def as_numpy(self) -> np.ndarray:
        raise ValueError("unpack requires a buffer of 4 bytes")


def test_a_tensor_that_cannot_be_read_fails_only_its_own_request(tokenizer_model) -> None:
    broken = fake_pb_utils.InferenceRequest()
    broken.inputs["TEXT"] = Unreadable()
    requests = [fake_pb_utils.InferenceRequest(TEXT=texts_tensor("fine")), broken]
    good, bad = tokenizer_model.execute(requests)
    assert good.error is None and good.tensors["input_ids"].shape[0] == 1
    assert bad.error.code == fake_pb_utils.TritonError.INVALID_ARG
    assert "TEXT: unpack requires" in bad.error.message()


LONG_TEXT_PIECES = ["word", "Thank", "you", "😤", "C'est", "ça", "  ", "\t", "\n", "don't", "!!!",
                    "naïve", "東京", "x" * 150, "—", "...", " " * 20]  # fmt: skip


def test_a_long_text_is_tokenised_only_as_far_as_max_length_needs(tokenizer_model) -> None:
    """The same ids as tokenising it whole, from a head a small multiple of max_length long."""
    rng = random.Random(0)
    model_tokenizer = tokenizer_model.encoder.tokenizer
    max_length = model_tokenizer.truncation["max_length"]
    for _ in range(200):
        words = rng.randint(0, 2000)
        text = "".join(
            rng.choice(LONG_TEXT_PIECES) + rng.choice([" ", "", "  "]) for _ in range(words)
        )
        head = tokenizer.head_of(model_tokenizer, text)
        assert text.startswith(head)
        assert model_tokenizer.encode(head).ids == model_tokenizer.encode(text).ids
    megabyte = "I am so happy today, thank you all! " * 30_000
    assert len(tokenizer.head_of(model_tokenizer, megabyte)) <= 16 * max_length


def test_a_text_over_the_byte_limit_fails_only_its_own_request(tokenizer_model) -> None:
    limit = tokenizer_model.encoder.max_text_bytes
    assert limit == 1 << 20  # published in the config, as emoclient's default
    requests = [
        fake_pb_utils.InferenceRequest(TEXT=texts_tensor("fine")),
        fake_pb_utils.InferenceRequest(TEXT=texts_tensor("ok", "é" * limit)),
    ]
    good, too_long = tokenizer_model.execute(requests)
    assert good.error is None
    assert f"text 1: {2 * limit} bytes, over the {limit}-byte limit" in too_long.error.message()
