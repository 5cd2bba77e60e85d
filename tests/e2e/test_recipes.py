"""Recipes: chosen from the config of real models, serving each card's labels and decisions,
refusing clearly, and finding the logits in a model's output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from emoclient import Client
from emoexport.errors import SourceError
from emoexport.exporter import ExportOptions, export_classifier
from emoexport.labels import EMOTION_LABELS, SEMEVAL_LABELS
from emoexport.recipes import GO_EMOTIONS_CARD_THRESHOLDS, select_recipe
from emoexport.source import LogitsNotFoundError, find_logits, read_config

from .models import build_remote_code_model

SCORES = torch.zeros(2, 11)


@pytest.mark.parametrize(
    ("model", "recipe"),
    [
        ("go_emotions", "go-emotions-roberta"),
        ("emotion", "emotion-distilbert"),
        ("emotion_generic", "emotion-distilbert"),
        ("emotion_bert", "sequence-classifier"),
        ("semeval", "semeval-remote-code"),
    ],
)
def test_the_recipe_is_chosen_from_the_config(served_models, model: str, recipe: str) -> None:
    directory = served_models[model].directory
    assert select_recipe(read_config(str(directory)), str(directory)).name == recipe


def test_generic_label_names_become_the_cards(client: Client) -> None:
    assert client.model("emotion_generic").labels == EMOTION_LABELS
    assert client.model("semeval").labels == SEMEVAL_LABELS
    assert client.model("semeval").max_length == 128


def test_the_threshold_profile_in_force_is_published(client: Client) -> None:
    card = client.model("go_emotions_card")
    assert card.threshold_profile == "card"
    assert card.thresholds == GO_EMOTIONS_CARD_THRESHOLDS
    assert client.model("go_emotions").threshold_profile == "default"


def test_remote_code_needs_the_flag(served_models, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="--trust-remote-code"):
        export_classifier(
            str(served_models["semeval"].directory), ExportOptions(name="s", repository=tmp_path)
        )
    assert not any(tmp_path.iterdir())


def test_an_ambiguous_tuple_needs_logits_output(tmp_path: Path) -> None:
    """Five labels: no card recipe fits, so the generic rule meets two [batch, 5] outputs."""
    source = build_remote_code_model(
        tmp_path / "ambiguous", first_output="similarity", num_labels=5
    )
    options = {"repository": tmp_path / "repo", "trust_remote_code": True}
    with pytest.raises(LogitsNotFoundError, match="--logits-output"):
        export_classifier(str(source), ExportOptions(name="a", **options))
    result = export_classifier(str(source), ExportOptions(name="a", logits_output="1", **options))
    assert result.parity.max_abs_diff <= 1e-4


def test_find_logits_follows_the_documented_rule() -> None:
    hidden, logits = torch.zeros(2, 32), torch.ones(2, 11)
    assert find_logits(SequenceClassifierOutput(logits=logits), None, 11) == "logits"
    assert find_logits((hidden, logits), None, 11) == 1
    assert find_logits((SCORES, logits), 1, 11) == 1
    with pytest.raises(LogitsNotFoundError, match=r"indices \[0, 1\]"):
        find_logits((SCORES, logits), None, 11)
    with pytest.raises(LogitsNotFoundError, match="no tensor there"):
        find_logits((hidden, logits), 5, 11)
