"""Recipes without a model: a config no recipe fits is refused saying what is missing, the
threshold profiles, and the list (tests/e2e/test_recipes.py chooses them for real models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emoexport.errors import SourceError
from emoexport.recipes import GO_EMOTIONS_CARD_THRESHOLDS, RECIPES, recipe_named, select_recipe


def test_a_model_no_recipe_fits_is_refused_with_what_is_missing() -> None:
    with pytest.raises(SourceError, match=r"architectures: BertModel.*--recipe"):
        select_recipe({"model_type": "bert", "architectures": ["BertModel"]}, "some/encoder")


def test_thresholds_option(tmp_path: Path) -> None:
    recipe = recipe_named("go-emotions-roberta")
    config = {
        "id2label": {str(i): label for i, label in enumerate(GO_EMOTIONS_CARD_THRESHOLDS)},
        "problem_type": "multi_label_classification",
    }
    assert recipe.scheme(config, "0.3").thresholds == (0.3,) * 28
    assert recipe.scheme(config, "0.3").threshold_profile == "uniform 0.3"
    custom = tmp_path / "mine.json"
    custom.write_text(json.dumps(dict.fromkeys(GO_EMOTIONS_CARD_THRESHOLDS, 0.42)))
    assert recipe.scheme(config, str(custom)).threshold_profile == "file mine.json"
    custom.write_text(json.dumps({"joy": 0.4}))
    with pytest.raises(SourceError, match="missing"):
        recipe.scheme(config, str(custom))
    with pytest.raises(SourceError, match="profiles: card"):
        recipe.scheme(config, "aggressive")
    single = {"id2label": {"0": "a", "1": "b"}}
    with pytest.raises(SourceError, match="argmax"):
        recipe_named("sequence-classifier").scheme(single, "0.5")


def test_every_recipe_is_listed() -> None:
    assert len({recipe.name for recipe in RECIPES}) == len(RECIPES)
    assert RECIPES[-1].name == "sequence-classifier"  # the generic path comes last
