"""Typed results: what a served model is, and what it said about one text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import protocol
from .errors import UnsupportedModelError


@dataclass(frozen=True)
class ModelInfo:
    """A served emotion classifier, as its ensemble config describes it."""

    name: str
    labels: tuple[str, ...]
    activation: str
    decision: str
    thresholds: Mapping[str, float] | None
    threshold_profile: str | None
    max_length: int | None
    max_batch_size: int
    bulk_batch_size: int  # texts per request of a bulk call

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelInfo:
        """Parse a model config (Triton's JSON form) published by `emotriton export`."""
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        name = config["name"]
        if protocol.PARAM_KIND not in parameters:
            raise UnsupportedModelError(
                f"model {name!r} is not an emotion classifier exported by emotriton"
            )
        labels = tuple(json.loads(parameters[protocol.PARAM_LABELS]))
        thresholds = parameters.get(protocol.PARAM_THRESHOLDS)
        max_length = parameters.get(protocol.PARAM_MAX_LENGTH)
        max_batch_size = int(config.get("max_batch_size", 0)) or 1
        bulk = int(parameters.get(protocol.PARAM_BULK_BATCH_SIZE, max_batch_size))
        return cls(
            name=name,
            labels=labels,
            activation=parameters[protocol.PARAM_ACTIVATION],
            decision=parameters[protocol.PARAM_DECISION],
            thresholds=None if thresholds is None else dict(zip(labels, json.loads(thresholds))),
            threshold_profile=parameters.get(protocol.PARAM_THRESHOLD_PROFILE),
            max_length=None if max_length is None else int(max_length),
            max_batch_size=max_batch_size,
            bulk_batch_size=min(max(bulk, 1), max_batch_size),
        )


@dataclass(frozen=True)
class Classification:
    """The model's verdict on one text.

    `scores` maps every label to its probability, in the model's label order; `labels` holds the
    predicted labels, highest score first; `index` is the text's position in the call.
    """

    index: int
    scores: Mapping[str, float]
    labels: tuple[str, ...]

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        """The k best-scoring labels with their scores, predicted or not."""
        return sorted(self.scores.items(), key=lambda item: item[1], reverse=True)[:k]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "labels": list(self.labels), "scores": dict(self.scores)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        best = ", ".join(f"{label}={score:.3f}" for label, score in self.top(3))
        return f"Classification(index={self.index}, labels={list(self.labels)}, top=[{best}])"


@dataclass(frozen=True)
class Health:
    """The server's liveness and readiness, and each model's readiness (name → ready)."""

    live: bool
    ready: bool
    models: Mapping[str, bool]
