"""The parity gate: what the server would compute must equal what PyTorch computes.

The served side is reproduced with the very code the server runs: the tokenizer model's
`tokenizers` pipeline on a padded batch, onnxruntime on the exported graph, and the postprocess
model's activation. The reference is the Hugging Face tokenizer and PyTorch, one text at a time,
unpadded. Export refuses to write a model that fails it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from .errors import ParityError
from .labels import LabelScheme
from .onnx_export import LogitsModel
from .source import HFClassifier
from .triton_models import postprocess
from .triton_models import tokenizer as tokenizer_model

DEFAULT_TOLERANCE = 1e-4


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
    max_abs_diff: float
    tolerance: float
    truncated_texts: int

    def __str__(self) -> str:
        return (
            f"parity: max |Δprobability| = {self.max_abs_diff:.2e} over {self.texts} texts "
            f"({self.truncated_texts} truncated), tolerance {self.tolerance:.0e}"
        )


def reference_probabilities(
    classifier: HFClassifier, scheme: LabelScheme, texts: list[str], max_length: int
) -> np.ndarray:
    """PyTorch, one unpadded text at a time, through the Hugging Face tokenizer."""
    wrapped = LogitsModel(classifier.model).eval()
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


def check_tokenizer(
    classifier: HFClassifier, served: dict[str, np.ndarray], texts: list[str], max_length: int
) -> None:
    """The served tokenizer must produce exactly the Hugging Face tokenizer's ids."""
    lengths = served["attention_mask"].sum(axis=1) if "attention_mask" in served else None
    for row, text in enumerate(texts):
        expected = classifier.tokenizer(text, truncation=True, max_length=max_length)
        for name in classifier.input_names:
            got = served[name][row]
            got = got[: lengths[row]] if lengths is not None else got
            if list(got) != list(expected[name]):
                raise ParityError(
                    f"the served tokenizer disagrees with {classifier.source}'s on {name} "
                    f"for text {row} ({text[:40]!r}): "
                    f"{list(got)[:12]}… vs {list(expected[name])[:12]}…"
                )


def check_parity(
    classifier: HFClassifier,
    scheme: LabelScheme,
    onnx_path: Path,
    tokenizer_path: Path,
    max_length: int,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    texts = sample_texts(max_length)
    served_tokenizer = tokenizer_model.load_tokenizer(
        tokenizer_path,
        max_length,
        classifier.tokenizer.pad_token,
        classifier.tokenizer.pad_token_id,
    )
    encoded = tokenizer_model.encode(served_tokenizer, texts, list(classifier.input_names))
    check_tokenizer(classifier, encoded, texts, max_length)

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, encoded)
    served = postprocess.ACTIVATIONS[scheme.activation](logits)
    reference = reference_probabilities(classifier, scheme, texts, max_length)
    max_abs_diff = float(np.abs(served - reference).max())
    untruncated = [len(classifier.tokenizer(t)["input_ids"]) for t in texts]
    report = ParityReport(
        texts=len(texts),
        max_abs_diff=max_abs_diff,
        tolerance=tolerance,
        truncated_texts=sum(length > max_length for length in untruncated),
    )
    if not max_abs_diff <= tolerance:  # also refuses NaN
        raise ParityError(f"refusing to export: {report}")
    return report
