"""The SMMix model card writer."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from smmix_hf.model_card import write_model_card

RECIPE = {"mix_method": "smmix", "learning_rate": 0.0005, "epochs": 300, "crop_scale": (0.08, 1.0)}


def test_card_round_trips_through_model_card_load(tmp_path) -> None:
    path = write_model_card(
        tmp_path / "out",
        model_name="deit-tiny-smmix",
        base_model="facebook/deit-tiny-patch16-224",
        dataset_name="sklearn-digits",
        recipe=RECIPE,
        metrics={"eval_top1": 0.8125, "eval_top5": 0.96875},
    )
    assert path == tmp_path / "out" / "README.md"
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "image-classification"
    assert data["tags"] == ["image-classification", "smmix", "vision"]
    assert data["base_model"] == "facebook/deit-tiny-patch16-224"
    assert data["datasets"] == ["sklearn-digits"]
    assert data["metrics"] == ["accuracy"]
    text = card.text
    assert "# deit-tiny-smmix" in text
    assert "| mix_method | smmix |" in text
    assert "| learning_rate | 0.0005 |" in text
    assert "| epochs | 300 |" in text
    assert "| crop_scale | 0.08, 1.0 |" in text
    assert "| eval_top1 | 0.8125 |" in text
    assert "| eval_top5 | 0.9688 |" in text
    assert "@inproceedings{chen2023smmix," in text
    assert "pages     = {17260--17270}," in text
    for package in ("transformers", "torch", "datasets", "accelerate", "smmix_hf"):
        assert f"- {package}: " in text


def test_card_without_optional_fields(tmp_path) -> None:
    path = write_model_card(tmp_path, model_name="scratch", base_model=None, dataset_name=None, recipe={})
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert "base_model" not in data
    assert "datasets" not in data
    assert "Not evaluated." in card.text


def test_bad_arguments_raise_value_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="model_name"):
        write_model_card(tmp_path, model_name=" ", base_model=None, dataset_name=None, recipe={})
    with pytest.raises(ValueError, match="finite number"):
        write_model_card(
            tmp_path, model_name="m", base_model=None, dataset_name=None, recipe={}, metrics={"top1": "high"}
        )
