"""run_smmix.py end to end on the digits, YAML recipes with command-line overrides, model aliases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers
from huggingface_hub import ModelCard
from huggingface_hub import constants as hub_constants
from tiny_data import digits_processor
from tiny_models import tiny_vit
from transformers import AutoModelForImageClassification, pipeline

from smmix_hf.backbones import builtin_config, resolve_model_name
from smmix_hf.cli.parser import parse_args
from smmix_hf.cli.train import main
from smmix_hf.data.digits import load_digits_dataset

DEMO = "demo"  # the packaged recipe, by name
QUICK = ["--max_steps", "4", "--logging_steps", "2", "--per_device_eval_batch_size", "64", "--disable_tqdm", "true"]


def test_cli_trains_and_the_checkpoint_is_a_stock_hf_model(tmp_path, caplog):
    output_dir = tmp_path / "run"
    metrics = main(
        ["--config", DEMO, "--output_dir", str(output_dir), "--max_eval_samples", "64", "--log_level", "info", *QUICK]
    )
    assert 0.0 <= metrics["eval_top1"] <= metrics["eval_top5"] <= 1.0
    # The log names the recipe before training, the motivation warm-up (not the paper's schedule) included.
    assert "Training recipe: mix_method=smmix" in caplog.text and "motivation_warmup=25% of steps" in caplog.text

    files = {path.name for path in output_dir.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= files
    assert "pytorch_model.bin" not in files

    card = ModelCard.load(output_dir / "README.md")
    assert {"image-classification", "smmix", "vision"} <= set(card.data.tags)
    assert card.data.datasets == ["sklearn-digits"]
    assert "chen2023smmix" in card.content and "| mix_method | smmix |" in card.content
    assert f"{metrics['eval_top1']:.4f}" in card.content
    assert "Framework versions" in card.content and f"- transformers: {transformers.__version__}" in card.content
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-classification"

    classifier = pipeline("image-classification", model=str(output_dir), device="cpu")
    digit = load_digits_dataset(seed=0)["validation"][0]["image"]
    predictions = classifier(digit, top_k=3)
    assert len(predictions) == 3
    assert {prediction["label"] for prediction in predictions} <= {str(d) for d in range(10)}
    assert predictions[0]["score"] >= predictions[1]["score"] >= predictions[2]["score"]


def test_yaml_values_are_read_and_the_command_line_wins(tmp_path):
    model_args, data_args, args = parse_args(
        ["--config", DEMO, "--learning_rate", "0.01", "--mixup_switch_prob", "0.25"]
    )
    assert model_args.model_name_or_path == "deit-tiny" and model_args.from_scratch
    assert data_args.dataset_name == "sklearn-digits" and data_args.horizontal_flip is False
    assert args.learning_rate == 0.01 and args.mixup_switch_prob == 0.25
    assert args.num_train_epochs == 40 and args.weight_decay == 0.05 and args.mix_method == "smmix"
    model_args, _, _ = parse_args(["--config", DEMO, "--model", "swin-tiny"])
    assert model_args.model_name_or_path == "swin-tiny"


def test_unknown_yaml_key_names_the_closest_valid_key(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: deit-tiny\nlearning_rte: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown key 'learning_rte' in .*did you mean 'learning_rate'"):
        parse_args(["--config", str(recipe)])


def test_model_alias_flag_and_short_names():
    model_args, _, _ = parse_args(["--model", "facebook/deit-small", "--output_dir", "x"])
    assert model_args.model_name_or_path == "facebook/deit-small"
    assert resolve_model_name("facebook/deit-small") == "facebook/deit-small-patch16-224"
    assert resolve_model_name("deit-tiny") == "facebook/deit-tiny-patch16-224"
    assert resolve_model_name("deit-base") == "facebook/deit-base-patch16-224"
    assert resolve_model_name("swin-tiny") == "microsoft/swin-tiny-patch4-window7-224"
    assert resolve_model_name("deit-small-distilled") == "facebook/deit-small-distilled-patch16-224"
    assert resolve_model_name("someone/custom-vit") == "someone/custom-vit"
    small = builtin_config("facebook/deit-small-patch16-224")
    assert (small.model_type, small.hidden_size, small.num_attention_heads, small.patch_size) == ("vit", 384, 6, 16)
    assert builtin_config("facebook/deit-tiny-distilled-patch16-224").model_type == "deit"
    assert builtin_config("microsoft/swin-tiny-patch4-window7-224").depths == [2, 2, 6, 2]
    with pytest.raises(ValueError, match="no built-in architecture"):
        builtin_config("someone/custom-vit")


def test_finetune_from_a_local_checkpoint_with_a_new_head(tmp_path):
    source = tmp_path / "source"
    tiny_vit(num_labels=5).save_pretrained(source)
    digits_processor().save_pretrained(source)
    pretrained = ["--config", DEMO, "--from_scratch", "false", "--config_overrides", "", "--model", str(source), *QUICK]
    with pytest.raises(ValueError, match="classifier for 5 classes but the dataset has 10; pass --ignore_mismatched"):
        main([*pretrained, "--output_dir", str(tmp_path / "refused")])
    output_dir = tmp_path / "tuned"
    metrics = main(
        [*pretrained, "--ignore_mismatched_sizes", "true", "--output_dir", str(output_dir), "--max_eval_samples", "32"]
    )
    assert "eval_top1" in metrics
    tuned = json.loads((output_dir / "config.json").read_text())
    assert len(tuned["id2label"]) == 10 and tuned["hidden_size"] == 32
    assert ModelCard.load(output_dir / "README.md").data.base_model == str(source)


class RecordingHubApi:
    """Stands in for the Hub, which this machine cannot reach: the upload itself is NOT tested here."""

    def __init__(self) -> None:
        self.uploads: list[dict] = []

    def create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def upload_folder(self, **kwargs):
        self.uploads.append({**kwargs, "files": sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())})


def push_run(output_dir: Path, repo_id: str) -> list[str]:
    return ["--config", DEMO, "--output_dir", str(output_dir), "--push_to_hub", "true", "--hub_model_id", repo_id,
            "--max_eval_samples", "32", *QUICK]  # fmt: skip


def pretend_online(monkeypatch, api) -> None:
    """Lift HF_HUB_OFFLINE for this test and route the Trainer's Hub calls to ``api``."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: api)


def test_push_to_hub_goes_through_the_trainers_own_mechanism(tmp_path, monkeypatch):
    api = RecordingHubApi()
    pretend_online(monkeypatch, api)
    output_dir = tmp_path / "pushed"
    main([*push_run(output_dir, "someone/smmix-digits"), "--hub_strategy", "end"])
    assert len(api.uploads) == 1, "one upload at the end of the run"
    final = api.uploads[-1]
    assert final["repo_id"] == "someone/smmix-digits"
    assert {"model.safetensors", "README.md", "preprocessor_config.json"} <= set(final["files"])
    assert "smmix" in ModelCard.load(output_dir / "README.md").data.tags


def test_offline_push_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="--push_to_hub needs the Hugging Face Hub but HF_HUB_OFFLINE is set"):
        main(["--config", DEMO, "--output_dir", str(tmp_path / "run"), "--push_to_hub", "true", *QUICK])
    assert not (tmp_path / "run").exists()


class FailingUploadHubApi(RecordingHubApi):
    """The Hub accepts the repository but the upload fails, as when the network drops at the end of a run."""

    def upload_folder(self, **kwargs):
        raise ConnectionError("connection reset by peer")


def test_failed_upload_keeps_the_checkpoint_and_says_how_to_retry(tmp_path, monkeypatch):
    pretend_online(monkeypatch, FailingUploadHubApi())
    output_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match=r"model is saved in .* but pushing it to someone/smmix failed .*hf upload"):
        main(push_run(output_dir, "someone/smmix"))
    assert AutoModelForImageClassification.from_pretrained(output_dir).config.num_labels == 10
