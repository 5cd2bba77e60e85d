"""The Triton Python models without an export, driven as Triton drives them: the postprocess
(activations, decisions, each request's own rows), the label scheme, and the tokenizer's text
decoding. The tokenizer of an exported model is in tests/e2e/test_python_models.py."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from tritonclient.grpc import model_config_pb2 as mc

from emoclient import protocol
from emoexport import configs
from emoexport.errors import LabelSchemeError
from emoexport.labels import LabelScheme
from emoexport.triton_models import postprocess, tokenizer

from .. import fake_pb_utils
from ..support import texts_tensor, triton_args


@pytest.fixture(autouse=True)
def triton_utils(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer, "pb_utils", fake_pb_utils)
    monkeypatch.setattr(postprocess, "pb_utils", fake_pb_utils)


def test_decode_texts_names_the_bad_index() -> None:
    with pytest.raises(tokenizer.InvalidText) as caught:
        tokenizer.decode_texts(texts_tensor("a", "b", b"\xc3\x28"), max_text_bytes=100)
    assert caught.value.index == 2


@pytest.mark.parametrize("logit", [-1000.0, -30.0, -1.5, 0.0, 2.0, 40.0, 1000.0])
def test_sigmoid_is_exact_and_never_overflows(logit: float) -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = postprocess.sigmoid(np.array([[logit]], dtype=np.float32))
    assert got[0, 0] == pytest.approx(special.expit(np.float64(logit)), abs=1e-7)


def test_softmax_is_stable_for_large_logits() -> None:
    logits = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = postprocess.softmax(logits)
    expected = special.softmax(logits.astype(np.float64), axis=-1)
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
        reference = batch.astype(np.float64)
        probabilities = (
            special.expit(reference)
            if scheme.activation == "sigmoid"
            else special.softmax(reference, axis=-1)
        )
        np.testing.assert_allclose(response.tensors["SCORES"], probabilities, atol=1e-6)
        if scheme.decision == "argmax":
            expected = np.eye(3, dtype=bool)[probabilities.argmax(axis=1)]
        else:
            expected = probabilities >= np.array(scheme.thresholds)
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
    for label in ("", " ", "two\nlines"):  # labels.txt holds one label a line
        with pytest.raises(LabelSchemeError, match="one line"):
            LabelScheme(("a", label), "softmax", "argmax")
    assert json.loads(LabelScheme(("x", "y"), "softmax", "argmax").parameters()["labels"]) == [
        "x",
        "y",
    ]


def test_postprocess_reads_the_scheme_under_the_names_the_ensemble_publishes() -> None:
    # postprocess.py runs in Triton's stub and cannot import emoclient; the names must agree.
    assert postprocess.ACTIVATION == protocol.PARAM_ACTIVATION
    assert postprocess.DECISION == protocol.PARAM_DECISION
    assert postprocess.THRESHOLDS == protocol.PARAM_THRESHOLDS


@functools.cache
def trained_tokenizer(kind: str, max_length: int = 64) -> Tokenizer:
    """A small tokenizer of each kind the models use, trained on the spot: byte-level BPE
    (RoBERTa's) or BERT's WordPiece (with its CJK-splitting normaliser)."""
    corpus = ["hello world this is text, isn't it?", "aaaa bbbb !!!! 你好世界 情"] * 50
    if kind == "bpe":
        trained = Tokenizer(models.BPE())
        trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=300, special_tokens=["<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )  # fmt: skip
    else:
        trained = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trained.normalizer = normalizers.BertNormalizer(lowercase=True)
        trained.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]"])
    trained.train_from_iterator(corpus, trainer)
    trained.enable_truncation(max_length=max_length)
    return trained


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
@pytest.mark.parametrize(
    "text",
    [
        "!" * 100_000,  # punctuation: a token per character
        "情" * 100_000,  # CJK: the same
        "a" * 100_000,  # one word
        ("x" * 3_000 + "!" * 5_000) * 12,
        "word " * 20_000,
        "".join("ab!情 "[(i * 7919) % 5] for i in range(100_000)),
        "".join("ab!情"[(i * 7919) % 4] for i in range(100_000)),  # no whitespace anywhere
    ],
    ids=["bang", "cjk", "one word", "runs", "words", "mixed", "mixed without spaces"],
)
def test_a_long_text_is_tokenised_as_far_as_max_length_needs(kind: str, text: str) -> None:
    """Whatever its characters, a text costs its head, not its bytes, and gives the tokens of
    the whole text (tokenising 1 MiB of `!` whole took 1.4 s, of CJK 3 s)."""
    tokens = trained_tokenizer(kind)
    head = tokenizer.head_of(tokens, text)
    assert len(head) <= 1024 * 64  # the cap: 1,024 characters per token of max_length
    assert tokens.encode(head).ids == tokens.encode(text).ids
