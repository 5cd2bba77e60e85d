"""The quality gate of a reduced-precision export: does the model still decide as well?

Parity at 1e-4 cannot hold for int8 or fp16 graphs; what must hold is the quality of the served
decisions. The export compares the fp32 and the reduced pipeline on labelled texts through a
`QualityCheck`, and refuses to write the model when the metric drops by more than the limit.
emoexport defines only the interface: the labelled datasets and the metrics live with the
evaluation code, which implements it (emotrain.evaluation.SplitQualityCheck), and the CLI
passes one in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import ExportError

DEFAULT_MAX_METRIC_DROP = 0.01

Classify = Callable[[list[str]], np.ndarray]
"""texts → bool [len(texts), labels]: the served decisions, columns in the model's label order."""


@dataclass(frozen=True)
class QualityReport:
    metric: str  # e.g. "macro-F1"
    data: str  # what it was measured on
    texts: int
    reference: float  # fp32
    candidate: float  # the reduced precision
    # The same measure on held-out data (a test split): reported, never gated on, so that the
    # figure a user reads was not what the choice was made on.
    held_out: QualityReport | None = None

    @property
    def drop(self) -> float:
        return self.reference - self.candidate

    def __str__(self) -> str:
        text = (
            f"quality: {self.metric} {self.reference:.4f} (fp32) → {self.candidate:.4f}, "
            f"drop {self.drop:+.4f}, on {self.texts} texts of {self.data}"
        )
        if self.held_out is not None:
            held = self.held_out
            text += (
                f"; held out (reported only): {held.reference:.4f} → {held.candidate:.4f} on "
                f"{held.texts} texts of {held.data}"
            )
        return text


class QualityCheck(Protocol):
    def compare(
        self, reference: Classify, candidate: Classify, labels: Sequence[str]
    ) -> QualityReport:
        """The metric of both classifiers (columns in `labels` order) on the same texts."""
        ...


class QualityError(ExportError):
    """The reduced-precision model decides worse than the limit allows."""


def gate(report: QualityReport, max_drop: float) -> QualityReport:
    """`report`, or QualityError when its drop exceeds `max_drop` (or is NaN)."""
    if not report.drop <= max_drop:
        raise QualityError(f"refusing to export: {report}, over the limit of {max_drop}")
    return report
