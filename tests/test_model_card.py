"""The SMMix model card writer, read back with huggingface_hub's own parsers (``ModelCard.load``, ``metadata_load``)."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard, metadata_load
from transformers.trainer_utils import SchedulerType
from transformers.training_args import OptimizerNames

from smmix_hf.cli.train import main
from smmix_hf.model_card import write_model_card

RECIPE = {"mix_method": "smmix", "learning_rate": 0.0005, "epochs": 300, "crop_scale": (0.08, 1.0)}
METRICS = {"eval_top1": 0.8125, "eval_top5": 0.96875, "eval_loss": 0.61}


def test_card_round_trips_through_model_card_load(tmp_path) -> None:
    path = write_model_card(
        tmp_path / "out",
        model_name="deit-tiny-smmix",
        base_model="facebook/deit-tiny-patch16-224",
        dataset_name="sklearn-digits",
        recipe=RECIPE,
        metrics=METRICS,
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
    assert "license" not in data and "language" not in data
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


def test_model_index_carries_the_eval_results(tmp_path) -> None:
    """The Hub shows ``model-index`` results on the model page; huggingface_hub parses them into EvalResults."""
    path = write_model_card(
        tmp_path, model_name="deit-tiny-smmix", base_model=None, dataset_name="sklearn-digits", recipe={},
        metrics=METRICS,
    )  # fmt: skip
    card = ModelCard.load(path)
    assert card.data.model_name == "deit-tiny-smmix"
    results = card.data.eval_results
    assert [(r.metric_type, r.metric_name, r.metric_value) for r in results] == [
        ("accuracy", "Top-1 accuracy", 0.8125),
        ("top_5_accuracy", "Top-5 accuracy", 0.9688),
    ]
    for result in results:
        assert (result.task_type, result.dataset_type, result.dataset_name, result.dataset_split) == (
            "image-classification", "sklearn-digits", "sklearn-digits", "validation",
        )  # fmt: skip
    (entry,) = metadata_load(path)["model-index"]
    assert entry["name"] == "deit-tiny-smmix" and len(entry["results"]) == 1, "one task and dataset, two metrics"
    assert entry["results"][0]["task"]["type"] == "image-classification"


def test_eval_accuracy_alone_is_top1_and_no_dataset_means_no_model_index(tmp_path) -> None:
    path = write_model_card(
        tmp_path / "a", model_name="m", base_model=None, dataset_name="beans", recipe={},
        metrics={"eval_accuracy": 0.5},
    )  # fmt: skip
    assert [(r.metric_type, r.metric_value) for r in ModelCard.load(path).data.eval_results] == [("accuracy", 0.5)]
    path = write_model_card(tmp_path / "b", model_name="m", base_model=None, dataset_name=None, recipe={},
                            metrics=METRICS)  # fmt: skip
    assert "model-index" not in metadata_load(path) and ModelCard.load(path).data.eval_results is None


def test_license_language_and_extra_tags_pass_through(tmp_path) -> None:
    path = write_model_card(
        tmp_path, model_name="m", base_model="google/vit-base-patch16-224", dataset_name="beans", recipe={},
        license="cc-by-nc-4.0", language=["en", "fr"], tags=["agriculture", "smmix", "agriculture"],
    )  # fmt: skip
    data = ModelCard.load(path).data
    assert data.license == "cc-by-nc-4.0"
    assert data.language == ["en", "fr"]
    assert data.tags == ["image-classification", "smmix", "vision", "agriculture"]
    assert data.base_model == "google/vit-base-patch16-224"
    assert metadata_load(tmp_path / "README.md")["license"] == "cc-by-nc-4.0"
    path = write_model_card(tmp_path, model_name="m", base_model=None, dataset_name=None, recipe={}, language="de")
    assert ModelCard.load(path).data.language == ["de"]


def test_enum_values_print_as_their_strings(tmp_path) -> None:
    recipe = {"optimizer": OptimizerNames.ADAMW_TORCH_FUSED, "lr_scheduler": SchedulerType.COSINE_WITH_MIN_LR}
    text = ModelCard.load(write_model_card(tmp_path, model_name="m", base_model=None, dataset_name=None,
                                           recipe=recipe)).text  # fmt: skip
    assert "| optimizer | adamw_torch_fused |" in text
    assert "| lr_scheduler | cosine_with_min_lr |" in text
    assert "OptimizerNames" not in text and "SchedulerType" not in text


def test_the_command_writes_license_language_tags_and_enum_strings(tmp_path) -> None:
    output_dir = tmp_path / "run"
    main(["--config", "demo", "--output_dir", str(output_dir), "--max_steps", "2", "--max_eval_samples", "32",
          "--disable_tqdm", "true", "--license", "mit", "--language", "en", "--tags", "digits", "demo"])  # fmt: skip
    card = ModelCard.load(output_dir / "README.md")
    assert [r.metric_type for r in card.data.eval_results] == ["accuracy", "top_5_accuracy"]
    assert "OptimizerNames" not in card.text and "SchedulerType" not in card.text
    assert (card.data.license, card.data.language) == ("mit", ["en"])
    assert card.data.tags == ["image-classification", "smmix", "vision", "digits", "demo"]


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
