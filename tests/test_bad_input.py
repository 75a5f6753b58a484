"""Bad input stops the run early with one line that says what was wrong and how to fix it.

In process, ``main`` raises a one-line :class:`UsageError`; the command (a real subprocess) prints it as
``smmix-train: error: ...`` and exits 2 without a traceback, the argparse convention. A failure once training runs
keeps its traceback.
"""

from __future__ import annotations

import subprocess
import sys

import datasets
import pytest
import torch
from data_files import records, write_image_folder
from messages import one_line, usage_error_line
from PIL import Image
from tiny_data import digits_split
from tiny_models import tiny_vit
from transformers import AutoModelForImageClassification, ConvNextConfig, ResNetConfig, ResNetForImageClassification

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.cli.errors import UsageError
from smmix_hf.cli.train import cli, main
from smmix_hf.data.sources import check_labels, class_names
from smmix_hf.data.transforms import collate_image_batch

DEMO = "demo"  # the packaged recipe, by name
QUICK = ["--max_steps", "2", "--disable_tqdm", "true", "--max_eval_samples", "16"]


def test_missing_column_lists_the_columns(tmp_path):
    with pytest.raises(UsageError) as error:
        main(["--config", DEMO, "--output_dir", str(tmp_path), "--label_column_name", "labels", *QUICK])
    assert "label column 'labels' is not in the dataset; its columns are: image, label" in one_line(error)


def test_image_size_not_divisible_by_the_patch(tmp_path):
    overrides = (
        "image_size=30,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"
    )
    with pytest.raises(UsageError) as error:
        main(["--config", DEMO, "--output_dir", str(tmp_path), "--config_overrides", overrides, *QUICK])
    assert "image size 30x30 is not divisible by the patch size 8" in one_line(error)


def test_a_one_token_grid_is_refused_before_training(tmp_path):
    """Image 16, patch 16: a 1×1 grid, where no SMMix window leaves the target a token (L_fine would be NaN)."""
    overrides = (
        "image_size=16,patch_size=16,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"
    )
    with pytest.raises(UsageError) as error:
        main(["--config", DEMO, "--output_dir", str(tmp_path / "run"), "--config_overrides", overrides, *QUICK])
    assert "SMMix needs at least 2 image tokens, but the model's token grid is 1x1" in one_line(error)
    assert not (tmp_path / "run").exists()


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    model = AutoModelForImageClassification.from_config(
        ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=10)
    )
    with pytest.raises(ValueError) as error:
        SMMixTrainer(model=model, args=SMMixConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none"))
    assert "SMMix does not support model_type 'convnext'" in one_line(error)
    assert "supported model types: vit, deit, swin, pvt, beit" in one_line(error)


def test_output_dir_holding_another_run_is_refused_unless_resuming_or_overwriting(tmp_path):
    output_dir = tmp_path / "run"
    main(["--config", DEMO, "--output_dir", str(output_dir), "--save_strategy", "steps", "--save_steps", "1", *QUICK])
    with pytest.raises(UsageError) as error:
        main(["--config", DEMO, "--output_dir", str(output_dir), *QUICK])
    message = one_line(error)
    assert f"output_dir '{output_dir}' already holds a run" in message
    assert f"--resume_from_checkpoint {output_dir / 'checkpoint-2'}" in message and "--overwrite_output_dir" in message
    metrics = main(["--config", DEMO, "--output_dir", str(output_dir), "--overwrite_output_dir", "true", *QUICK])
    assert "eval_top1" in metrics


class TurnsNonFinite(torch.utils.data.Dataset):
    """Real digits whose pixels become NaN after ``finite_items`` reads, i.e. from a known step on."""

    def __init__(self, finite_items: int) -> None:
        self.images = digits_split("train", 64, train_transform=True)
        self.finite_items, self.reads = finite_items, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.images[index])
        self.reads += 1
        if self.reads > self.finite_items:
            item["pixel_values"] = torch.full_like(item["pixel_values"], float("nan"))
        return item


def test_non_finite_loss_stops_with_the_step_and_saves_nothing_corrupt(tmp_path):
    args = SMMixConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=6, save_strategy="steps", save_steps=1,
        logging_steps=5, use_cpu=True, report_to="none", disable_tqdm=True, mixup_switch_prob=1.0,
    )  # fmt: skip
    trainer = SMMixTrainer(model=tiny_vit(), args=args, train_dataset=TurnsNonFinite(finite_items=16),
                           data_collator=collate_image_batch)  # fmt: skip
    with pytest.raises(FloatingPointError) as error:
        trainer.train()
    assert "non-finite at step 3; stopped before saving the checkpoint of step 3" in one_line(error)
    assert sorted(path.name for path in tmp_path.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    saved = AutoModelForImageClassification.from_pretrained(tmp_path / "checkpoint-2")
    assert all(torch.isfinite(parameter).all() for parameter in saved.parameters())


def test_labels_outside_the_class_ids_are_refused(tmp_path):
    image = Image.new("RGB", (32, 32))
    train = datasets.Dataset.from_dict({"image": [image] * 4, "label": [0, 1, 2, 7]})
    with pytest.raises(ValueError) as error:
        class_names(train, "label")
    assert "label column 'label' holds 0, 1, 2, 7; labels must be class ids 0..3 or a ClassLabel" in one_line(error)
    validation = datasets.Dataset.from_dict({"image": [image] * 2, "label": [1, 12]})
    with pytest.raises(ValueError) as error:
        check_labels(validation, "label", num_labels=10)
    assert "holds 12, outside the model's 10 classes (0..9)" in one_line(error)


# ---- the command: one line and exit 2 for usage errors, a traceback for failures during training ----


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--config", "demo", "--max_steps", "x"], "argument --max_steps/--max-steps: invalid int value: 'x' (see "
         "smmix-train --help)"),
        (["--config", "demo", "--learning_rte", "0.1"], "unrecognized arguments: --learning_rte 0.1; did you mean "
         "'--learning_rate'? (see smmix-train --help)"),
        (["--config", "dmo"], "config 'dmo' is neither a file nor a packaged recipe; did you mean 'demo'?"),
        (["--output_dir", "run"], "the following arguments are required: --model_name_or_path/--model"),
        (["--config", "demo", "--mixup_alpha", "0"], "mixup_alpha must be > 0 (it parameterises a Beta distribution)"),
        (["--config", "demo", "--label_column_name", "labels"], "label column 'labels' is not in the dataset; its "
         "columns are: image, label"),
        (["--config", "demo", "--motivation_warmup_ratio", "1"], "motivation_warmup_ratio must be in [0, 1); got 1.0."),
        (["--config", "demo", "--motivation_warmup_ratio", "0.1", "--motivation_warmup_epochs", "2"],
         "give motivation_warmup_ratio or motivation_warmup_epochs above 0, not both; got 0.1 and 2.0."),
        (["--config", "demo", "--motivation_warmup_epochs", "nan"], "motivation_warmup_epochs must be >= 0; got nan."),
        (["--config", "demo", "--motivation_warmup_mixing", "cutmx"], "motivation_warmup_mixing must be one of "
         "random_windows, cutmix, cutmix_then_random_windows; got 'cutmx'."),
        (["--config", "demo", "--from_scratch", "false", "--config_overrides", "", "--model", "/nonexistent/dir"],
         "--model '/nonexistent/dir': the directory does not exist; pass an existing checkpoint directory"),
    ],
    ids=["bad-value", "unknown-flag", "unknown-recipe", "missing-model", "config-validation", "data-check",
         "warmup-ratio-range", "warmup-both-given", "warmup-epochs-nan", "warmup-mixing-choice", "model-directory"],
)  # fmt: skip
def test_usage_errors_print_one_line_and_exit_2(argv, expected, tmp_path, smmix_train):
    result = smmix_train(*argv, "--output_dir", str(tmp_path / "run"))
    assert expected in usage_error_line(result)
    assert not (tmp_path / "run").exists()


def test_smmix_debug_shows_the_traceback_of_a_usage_error(tmp_path, smmix_train):
    result = smmix_train("--config", "demo", "--mixup_alpha", "0", "--output_dir", str(tmp_path), debug=True)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "in check_mix_settings" in result.stderr
    assert "smmix_hf.cli.errors.UsageError: mixup_alpha must be > 0" in result.stderr
    assert "smmix-train: error:" not in result.stderr


def test_a_failure_during_training_keeps_its_traceback(tmp_path, smmix_train):
    """The same kind of exception as a usage error (a ValueError) raised once training runs is not one."""
    folder = write_image_folder(tmp_path / "images", records(16, 2, corrupt=(5,)))
    result = smmix_train(
        "--config", "demo", "--dataset_name", "", "--train_dir", str(folder), "--validation_dir", str(folder),
        "--strict_images", "true", "--dataloader_num_workers", "0", "--output_dir", str(tmp_path / "run"), *QUICK,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback (most recent call last)" in result.stderr and "trainer.train(" in result.stderr
    assert "ImageDecodeError" in result.stderr and "s00005.png" in result.stderr
    assert "smmix-train: error:" not in result.stderr


# ---- the places a run reads and writes, checked in this process through the console entry point ----


def command_error(argv: list[str], monkeypatch, capsys) -> str:
    """Run ``smmix-train`` (its ``cli()``) in this process; it must exit 2 with one error line on stderr."""
    monkeypatch.setattr(sys, "argv", ["smmix-train", *argv])
    monkeypatch.delenv("SMMIX_DEBUG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit) as exited:
        cli()
    return usage_error_line(subprocess.CompletedProcess(argv, exited.value.code, "", capsys.readouterr().err))


PRETRAINED = ["--config", DEMO, "--from_scratch", "false", "--config_overrides", ""]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([*PRETRAINED, "--model", "/nonexistent/dir"], "--model '/nonexistent/dir': the directory does not exist; "
         "pass an existing checkpoint directory (one with config.json) or a Hub model id"),
        (["--config", DEMO, "--model", "~/nonexistent/dir"], "--model '~/nonexistent/dir': the directory does not "
         "exist"),
        ([*PRETRAINED, "--model", "someone/not-a-model"], "--model 'someone/not-a-model' is neither a local directory "
         "nor in the Hugging Face cache, and the Hub can't be reached offline (HF_HUB_OFFLINE is set); download it "
         "first (`hf download someone/not-a-model`), unset HF_HUB_OFFLINE, or pass a local checkpoint directory."),
        ([*PRETRAINED, "--model", "deit-tiny"], "--model 'deit-tiny (facebook/deit-tiny-patch16-224)' is neither a "
         "local directory nor in the Hugging Face cache"),
        (["--config", DEMO, "--motivator_model", "./teacher"], "--motivator_model './teacher': the directory does not "
         "exist"),
    ],
    ids=["missing-directory", "missing-directory-from-scratch", "hub-id-offline", "short-name-offline", "motivator"],
)  # fmt: skip
def test_a_model_that_cannot_be_loaded_is_a_usage_error(argv, expected, tmp_path, monkeypatch, capsys):
    message = command_error([*argv, *QUICK, "--output_dir", str(tmp_path / "run")], monkeypatch, capsys)
    assert message.startswith(expected), message
    assert not (tmp_path / "run").exists()


def test_a_model_directory_without_config_json_is_a_usage_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "weights").mkdir()
    message = command_error([*PRETRAINED, "--model", str(tmp_path / "weights"), *QUICK, "--output_dir",
                             str(tmp_path / "run")], monkeypatch, capsys)  # fmt: skip
    assert message == (
        f"--model '{tmp_path / 'weights'}' is a directory without config.json; pass a directory written by "
        "save_pretrained (a finished run's output_dir or one of its checkpoint-N folders), or a Hub model id."
    )


@pytest.mark.parametrize("with_demo_overrides", [True, False], ids=["demo-recipe", "no-overrides"])
def test_a_model_directory_that_is_not_a_vision_transformer_is_one_line(
    with_demo_overrides, tmp_path, monkeypatch, capsys
):
    """A ResNet saved by transformers itself; with the demo recipe's ViT overrides it used to fail on a config key."""
    config = ResNetConfig(num_labels=10, hidden_sizes=[8, 8], depths=[1, 1], embedding_size=8)
    ResNetForImageClassification(config).save_pretrained(tmp_path / "resnet")
    overrides = [] if with_demo_overrides else ["--config_overrides", ""]
    argv = ["--config", DEMO, "--from_scratch", "false", *overrides, "--model", str(tmp_path / "resnet"), *QUICK,
            "--output_dir", str(tmp_path / "run")]  # fmt: skip
    assert command_error(argv, monkeypatch, capsys) == (
        f"--model '{tmp_path / 'resnet'}' is a resnet model (ResNetForImageClassification), not a vision transformer; "
        "SMMix places its windows by a vision transformer's attention to image patches. docs/backbones.md lists the "
        "models that work."
    )


def test_resuming_from_a_missing_checkpoint_is_a_usage_error(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "run" / "checkpoint-9"
    message = command_error(["--config", DEMO, "--output_dir", str(tmp_path / "run"), "--resume_from_checkpoint",
                             str(missing), *QUICK], monkeypatch, capsys)  # fmt: skip
    assert message == (
        f"--resume_from_checkpoint '{missing}' does not exist; pass a checkpoint-N directory of an earlier run, or "
        "drop --resume_from_checkpoint to start afresh."
    )
    earlier = tmp_path / "earlier"
    (earlier / "checkpoint-4").mkdir(parents=True)
    (earlier / "checkpoint-4" / "trainer_state.json").write_text("{}")
    message = command_error(["--config", DEMO, "--output_dir", str(tmp_path / "run"), "--resume_from_checkpoint",
                             str(earlier), *QUICK], monkeypatch, capsys)  # fmt: skip
    assert message.startswith(f"--resume_from_checkpoint '{earlier}' is a directory without trainer_state.json, so")
    assert f"(the latest one there is {earlier / 'checkpoint-4'})" in message


def test_an_output_dir_that_is_a_file_is_a_usage_error(tmp_path, monkeypatch, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("not a directory")
    message = command_error(["--config", DEMO, "--output_dir", str(existing), *QUICK], monkeypatch, capsys)
    assert (
        message == f"--output_dir '{existing}' is an existing file; choose a directory path (it is created if missing)."
    )
    inside = existing / "run"
    message = command_error(["--config", DEMO, "--output_dir", str(inside), *QUICK], monkeypatch, capsys)
    assert message.startswith(f"--output_dir '{inside}' is inside '{existing}', which is a file;")


@pytest.mark.parametrize("streaming", [False, True], ids=["map-style", "streamed"])
def test_an_empty_class_folder_is_refused_by_name(streaming, tmp_path, monkeypatch, capsys):
    """``datasets``' imagefolder drops an empty class folder, the streamed folder reader keeps it as a class:
    either way num_labels and the label ids would change without a word, so the command refuses it."""
    folder = write_image_folder(tmp_path / "images", records(12, 3))
    (folder / "class001b").mkdir()
    stream = ["--streaming", "--validation_dir", str(folder), "--num_train_examples", "12"] if streaming else []
    argv = ["--config", DEMO, "--dataset_name", "", "--train_dir", str(folder), *stream, "--output_dir",
            str(tmp_path / "run"), *QUICK]  # fmt: skip
    message = command_error(argv, monkeypatch, capsys)
    assert message == (
        f"--train_dir '{folder}': class folder(s) 'class001b' hold no image files; put the class's images in them or "
        "remove them (an empty class would change the number of classes and the label ids)."
    )
