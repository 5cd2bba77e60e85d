"""The parity gate: what the server would compute must equal what PyTorch computes.

The served side is the staged repository itself, run in-process with the very code the server
runs (emoexport.inprocess): the tokenizer model, onnxruntime on the exported graphs with their
ragged-batching preamble, and the postprocess model. The reference is the Hugging Face
tokenizer and PyTorch (for sentence encoders, sentence-transformers' own `encode`). Export
refuses to install a model that fails it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from emoclient import protocol

from .errors import ParityError
from .head import Head
from .inprocess import ExportedEnsemble
from .labels import LabelScheme
from .onnx_export import LogitsModel
from .options import DEFAULT_TOLERANCE
from .sentence_encoder import EMBEDDING_OUTPUT, SentenceEncoder
from .source import HFClassifier


def sample_texts(max_length: int) -> list[str]:
    """Short, empty, non-ASCII, and longer-than-max_length texts."""
    long_text = " ".join(
        ["I can't believe how wonderful and terrible this day has been."] * max_length
    )
    return [
        "Thank you so much!",
        "I am not having a great day",
        "",
        "   ",
        "Ugh. Why does this keep happening to me?? 😤",
        "C'est la vie — ça arrive, même aux meilleurs.",
        "The meeting is at 3pm in room 42.",
        long_text,
    ]


@dataclass(frozen=True)
class ParityReport:
    texts: int
    max_abs_diff: float  # of the served probabilities
    tolerance: float
    truncated_texts: int
    embedding_max_abs_diff: float | None = None

    def __str__(self) -> str:
        embedding = (
            ""
            if self.embedding_max_abs_diff is None
            else f"max |Δembedding| = {self.embedding_max_abs_diff:.2e}, "
        )
        return (
            f"parity: {embedding}max |Δprobability| = {self.max_abs_diff:.2e} over {self.texts} "
            f"texts ({self.truncated_texts} truncated), tolerance {self.tolerance:.0e}"
        )

    def passed(self) -> ParityReport:
        """This report, or ParityError when a difference exceeds the tolerance (or is NaN)."""
        differences = [self.max_abs_diff, self.embedding_max_abs_diff]
        if not all(d <= self.tolerance for d in differences if d is not None):
            raise ParityError(f"refusing to export: {self}")
        return self


def reference_probabilities(
    classifier: HFClassifier, scheme: LabelScheme, texts: list[str], max_length: int
) -> np.ndarray:
    """PyTorch, one unpadded text at a time, through the Hugging Face tokenizer."""
    wrapped = LogitsModel(classifier.model, classifier.logits_output).eval()
    activate = torch.sigmoid if scheme.activation == "sigmoid" else lambda x: torch.softmax(x, -1)
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = classifier.tokenizer(
                text, truncation=True, max_length=max_length, return_tensors="pt"
            )
            logits = wrapped(**{name: encoded[name] for name in classifier.input_names})
            rows.append(activate(logits.double())[0].numpy())
    return np.stack(rows)


def check_served_inputs(
    reference_tokenizer,
    input_names: tuple[str, ...],
    served: dict[str, np.ndarray],
    texts: list[str],
    max_length: int,
) -> None:
    """The encoder inputs the tokenizer model produced, id for id against the Hugging Face
    tokenizer's."""
    lengths = served["attention_mask"].sum(axis=1) if "attention_mask" in served else None
    for row, text in enumerate(texts):
        expected = reference_tokenizer(text, truncation=True, max_length=max_length)
        for name in input_names:
            got = served[name][row]
            got = got[: lengths[row]] if lengths is not None else got
            if list(got) != list(expected[name]):
                raise ParityError(
                    f"the served tokenizer disagrees with the model's on {name} "
                    f"for text {row} ({text[:40]!r}): "
                    f"{list(got)[:12]}… vs {list(expected[name])[:12]}…"
                )


def _truncated(reference_tokenizer, texts: list[str], max_length: int) -> int:
    return sum(len(reference_tokenizer(t)["input_ids"]) > max_length for t in texts)


def check_parity(
    classifier: HFClassifier,
    scheme: LabelScheme,
    served: ExportedEnsemble,
    max_length: int,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    """A sequence classifier: served probabilities against PyTorch's."""
    texts = sample_texts(max_length)
    tensors = served.run(texts)
    check_served_inputs(classifier.tokenizer, classifier.input_names, tensors, texts, max_length)
    reference = reference_probabilities(classifier, scheme, texts, max_length)
    return ParityReport(
        texts=len(texts),
        max_abs_diff=float(np.abs(tensors[protocol.SCORES_OUTPUT] - reference).max()),
        tolerance=tolerance,
        truncated_texts=_truncated(classifier.tokenizer, texts, max_length),
    ).passed()


def check_embedding_parity(
    encoder: SentenceEncoder,
    head: Head,
    served: ExportedEnsemble,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    """A sentence encoder and head: served embeddings against sentence-transformers' `encode`,
    and the served probabilities against the head's on the reference embeddings."""
    texts = sample_texts(encoder.max_length)
    tensors = served.run(texts)
    check_served_inputs(encoder.tokenizer, encoder.input_names, tensors, texts, encoder.max_length)
    reference = encoder.encode(texts)
    probabilities = tensors[protocol.SCORES_OUTPUT] - head.positive_probabilities(reference)
    return ParityReport(
        texts=len(texts),
        max_abs_diff=float(np.abs(probabilities).max()),
        tolerance=tolerance,
        truncated_texts=_truncated(encoder.tokenizer, texts, encoder.max_length),
        embedding_max_abs_diff=float(np.abs(tensors[EMBEDDING_OUTPUT] - reference).max()),
    ).passed()
