"""Recipes: how each kind of classifier is loaded, where its logits are, and how they are decided.

Export reads a model's config.json (without running any of its code) and takes the first recipe
whose rule matches, most specific first; `--recipe NAME` overrides the choice. The seed models'
cards fix their conventions: label names, activation, thresholds, and for custom code the output
that holds the logits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import SourceError
from .labels import EMOTION_LABELS, GO_EMOTIONS_LABELS, SEMEVAL_LABELS, LabelScheme

# Card 000's second table: per-label thresholds that maximise F1.
GO_EMOTIONS_CARD_THRESHOLDS = dict(zip(GO_EMOTIONS_LABELS, (
    0.25, 0.45, 0.15, 0.10, 0.30, 0.40, 0.55, 0.25, 0.25, 0.40, 0.30, 0.20, 0.10, 0.35, 0.40,
    0.45, 0.05, 0.40, 0.25, 0.25, 0.20, 0.10, 0.15, 0.05, 0.10, 0.40, 0.15, 0.25,
)))  # fmt: skip

_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")
Loader = Literal["sequence-classification", "auto-model"]


def labels_of(config: Mapping[str, Any]) -> tuple[str, ...]:
    id2label = config.get("id2label") or {}
    return tuple(id2label[key] for key in sorted(id2label, key=int))


def has_generic_labels(config: Mapping[str, Any]) -> bool:
    return all(_GENERIC_LABEL.match(label) for label in labels_of(config))


def is_multi_label(config: Mapping[str, Any]) -> bool:
    return config.get("problem_type") == "multi_label_classification"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    matches: Callable[[Mapping[str, Any]], bool]
    loader: Loader = "sequence-classification"
    labels: tuple[str, ...] | None = None  # replaces generic LABEL_k names
    activation: Literal["sigmoid", "softmax"] | None = None  # None: from problem_type
    threshold_profiles: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    logits_output: int | str | None = None  # None: the documented rule (source.find_logits)
    max_length: int | None = None  # the card's truncation, when it sets one

    def label_names(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        declared = labels_of(config)
        if self.labels is None or not has_generic_labels(config):
            return declared
        if len(self.labels) != len(declared):
            raise SourceError(
                f"recipe {self.name} names {len(self.labels)} labels, the model has {len(declared)}"
            )
        return self.labels

    def scheme(self, config: Mapping[str, Any], thresholds: str | None) -> LabelScheme:
        """The decision rule: the card's, with `--thresholds` (a number, a JSON file of
        label → threshold, or a profile name) where the model decides by thresholds."""
        labels = self.label_names(config)
        activation = self.activation or ("sigmoid" if is_multi_label(config) else "softmax")
        if activation == "softmax":
            if thresholds is not None:
                raise SourceError(
                    f"{self.name} decides by argmax (single-label); --thresholds does not apply"
                )
            return LabelScheme(labels, "softmax", "argmax")
        profile, chosen = self._thresholds(labels, thresholds or "0.5")
        return LabelScheme(labels, "sigmoid", "threshold", chosen, threshold_profile=profile)

    def _thresholds(self, labels: tuple[str, ...], spec: str) -> tuple[str, tuple[float, ...]]:
        try:
            value = float(spec)
        except ValueError:
            pass
        else:
            return ("default" if value == 0.5 else f"uniform {value:g}"), (value,) * len(labels)
        if spec in self.threshold_profiles:
            mapping, profile = self.threshold_profiles[spec], spec
        elif Path(spec).is_file():
            mapping, profile = json.loads(Path(spec).read_text()), f"file {Path(spec).name}"
        else:
            known = ", ".join(self.threshold_profiles) or "none"
            raise SourceError(
                f"--thresholds {spec!r} is not a number, a JSON file, or a profile of recipe "
                f"{self.name} (profiles: {known})"
            )
        missing, unknown = set(labels) - set(mapping), set(mapping) - set(labels)
        if missing or unknown:
            raise SourceError(
                f"thresholds {profile}: missing {sorted(missing)}, unknown labels {sorted(unknown)}"
            )
        return profile, tuple(float(mapping[label]) for label in labels)


def _is_sequence_classifier(config: Mapping[str, Any]) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or ())


RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "go-emotions-roberta",
        "SamLowe/roberta-base-go_emotions: RoBERTa, 28 go_emotions labels, sigmoid; "
        "threshold 0.5, or --thresholds card for the model card's per-label thresholds",
        lambda c: (
            c.get("model_type") == "roberta"
            and is_multi_label(c)
            and labels_of(c) == GO_EMOTIONS_LABELS
            and _is_sequence_classifier(c)
        ),
        threshold_profiles={"card": GO_EMOTIONS_CARD_THRESHOLDS},
    ),
    Recipe(
        "semeval-remote-code",
        "Hidden-States/roberta-base-semeval: custom code loaded with AutoModel, "
        "`_, logits = model(**inputs)`, 11 SemEval labels, sigmoid, threshold 0.5, max_length 128",
        lambda c: "auto_map" in c and len(labels_of(c)) == len(SEMEVAL_LABELS),
        loader="auto-model",
        labels=SEMEVAL_LABELS,
        activation="sigmoid",
        logits_output=1,
        max_length=128,
    ),
    Recipe(
        "emotion-distilbert",
        "DistilBERT fine-tuned on dair-ai emotion: 6 labels, softmax, argmax; "
        "LABEL_0..5 read as sadness, joy, love, anger, fear, surprise",
        lambda c: (
            c.get("model_type") == "distilbert"
            and len(labels_of(c)) == len(EMOTION_LABELS)
            and not is_multi_label(c)
            and _is_sequence_classifier(c)
        ),
        labels=EMOTION_LABELS,
    ),
    Recipe(
        "custom-code",
        "any model with its own code (auto_map), loaded with AutoModel; logits by the documented "
        "rule or --logits-output; sigmoid if multi-label, else softmax",
        lambda c: "auto_map" in c,
        loader="auto-model",
    ),
    Recipe(
        "sequence-classifier",
        "any transformers *ForSequenceClassification: sigmoid + 0.5 if multi-label, else "
        "softmax + argmax",
        _is_sequence_classifier,
    ),
)


def recipe_named(name: str) -> Recipe:
    for recipe in RECIPES:
        if recipe.name == name:
            return recipe
    raise SourceError(f"unknown recipe {name!r}; known: {', '.join(r.name for r in RECIPES)}")


def select_recipe(config: Mapping[str, Any], source: str) -> Recipe:
    for recipe in RECIPES:
        if recipe.matches(config):
            return recipe
    architectures = ", ".join(config.get("architectures") or ["none declared"])
    raise SourceError(
        f"{source} is not a plain sequence classifier (architectures: {architectures}) and no "
        f"recipe matches it; pass --recipe NAME (see --list-recipes), or --head HEAD if it is a "
        "sentence-transformers encoder"
    )
