"""Unit tests of the Triton Python models (tokenizer, postprocess), driven as Triton drives them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from google.protobuf import json_format, text_format
from transformers import AutoTokenizer
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol
from emoexport import configs
from emoexport.errors import LabelSchemeError
from emoexport.labels import LabelScheme
from emoexport.triton_models import postprocess, tokenizer

from . import fake_pb_utils
from .conftest import MAX_LENGTH


@pytest.fixture(autouse=True)
def triton_utils(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer, "pb_utils", fake_pb_utils)
    monkeypatch.setattr(postprocess, "pb_utils", fake_pb_utils)


def triton_args(model_directory: Path, config: mc.ModelConfig | None = None) -> dict[str, str]:
    """The `args` Triton passes to initialize(), from a config as export wrote it."""
    if config is None:
        config = text_format.Parse((model_directory / "config.pbtxt").read_text(), mc.ModelConfig())
    as_json = json_format.MessageToJson(config, preserving_proto_field_name=True)
    return {"model_config": as_json, "model_repository": str(model_directory), "model_version": "1"}


def texts_tensor(*texts: str | bytes) -> np.ndarray:
    return np.array([[t.encode() if isinstance(t, str) else t] for t in texts], dtype=object)


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


def test_decode_texts_names_the_bad_index() -> None:
    with pytest.raises(tokenizer.InvalidText) as caught:
        tokenizer.decode_texts(texts_tensor("a", "b", b"\xc3\x28"), max_text_bytes=100)
    assert caught.value.index == 2


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


@pytest.mark.parametrize("logit", [-1000.0, -30.0, -1.5, 0.0, 2.0, 40.0, 1000.0])
def test_sigmoid_is_exact_and_never_overflows(logit: float) -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = postprocess.sigmoid(np.array([[logit]], dtype=np.float32))
    assert got[0, 0] == pytest.approx(
        torch.sigmoid(torch.tensor(logit, dtype=torch.float64)).item(), abs=1e-7
    )


def test_softmax_is_stable_for_large_logits() -> None:
    logits = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = postprocess.softmax(logits)
    expected = torch.softmax(torch.tensor(logits, dtype=torch.float64), -1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)


def test_decide_threshold_is_inclusive_and_argmax_picks_one() -> None:
    scores = np.array([[0.5, 0.49, 0.9], [0.1, 0.2, 0.3]], dtype=np.float32)
    thresholds = np.array([0.5, 0.5, 0.95], dtype=np.float32)
    assert postprocess.decide(scores, "threshold", thresholds).tolist() == [
        [True, False, False],
        [False, False, False],
    ]
    assert postprocess.decide(scores, "argmax", None).tolist() == [
        [False, False, True],
        [False, False, True],
    ]
    with pytest.raises(ValueError, match="unknown decision"):
        postprocess.decide(scores, "vote", None)


@pytest.mark.parametrize(
    "scheme",
    [
        LabelScheme(("a", "b", "c"), "sigmoid", "threshold", (0.2, 0.5, 0.9), "custom"),
        LabelScheme(("a", "b", "c"), "softmax", "argmax"),
    ],
)
def test_postprocess_serves_each_request_its_own_rows(scheme: LabelScheme, tmp_path: Path) -> None:
    model = postprocess_model(scheme, configs.TensorSpec("logits", mc.TYPE_FP32, [3]))
    rng = np.random.default_rng(0)
    logits = [rng.normal(0, 3, (n, 3)).astype(np.float32) for n in (1, 4, 2)]
    responses = model.execute([fake_pb_utils.InferenceRequest(logits=batch) for batch in logits])
    for batch, response in zip(logits, responses):
        reference = torch.tensor(batch, dtype=torch.float64)
        probabilities = (
            torch.sigmoid(reference)
            if scheme.activation == "sigmoid"
            else torch.softmax(reference, -1)
        )
        np.testing.assert_allclose(response.tensors["SCORES"], probabilities.numpy(), atol=1e-6)
        if scheme.decision == "argmax":
            expected = np.eye(3, dtype=bool)[probabilities.numpy().argmax(axis=1)]
        else:
            expected = probabilities.numpy() >= np.array(scheme.thresholds)
        assert response.tensors["PREDICTED"].tolist() == expected.tolist()


def postprocess_model(
    scheme: LabelScheme, scores: configs.TensorSpec
) -> postprocess.TritonPythonModel:
    config = configs.postprocess_config(
        "p", scores, len(scheme.labels), scheme.parameters(), batching=configs.Batching()
    )
    model = postprocess.TritonPythonModel()
    model.initialize(triton_args(Path("unused"), config))
    return model


def test_label_scheme_validates_thresholds() -> None:
    with pytest.raises(LabelSchemeError, match="2 thresholds for 3 labels"):
        LabelScheme(("a", "b", "c"), "sigmoid", "threshold", (0.5, 0.5))
    with pytest.raises(LabelSchemeError, match=r"\[0, 1\]"):
        LabelScheme(("a",), "sigmoid", "threshold", (1.5,))
    with pytest.raises(LabelSchemeError, match="unique"):
        LabelScheme(("a", "a"), "softmax", "argmax")
    with pytest.raises(LabelSchemeError, match="only with it"):
        LabelScheme(("a",), "softmax", "argmax", (0.5,))
    assert json.loads(LabelScheme(("x", "y"), "softmax", "argmax").parameters()["labels"]) == [
        "x",
        "y",
    ]


def test_postprocess_reads_the_scheme_under_the_names_the_ensemble_publishes() -> None:
    # postprocess.py runs in Triton's stub and cannot import emoclient; the names must agree.
    assert postprocess.ACTIVATION == protocol.PARAM_ACTIVATION
    assert postprocess.DECISION == protocol.PARAM_DECISION
    assert postprocess.THRESHOLDS == protocol.PARAM_THRESHOLDS
