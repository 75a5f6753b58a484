"""Bad input stops the run early with one line that says what was wrong and how to fix it.

In process, ``main`` raises a one-line :class:`UsageError`; the command (a real subprocess) prints it as
``smmix-train: error: ...`` and exits 2 without a traceback, the argparse convention. A failure once training runs
keeps its traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import datasets
import pytest
import torch
from data_files import records, write_image_folder
from PIL import Image
from tiny_data import digits_split
from tiny_models import tiny_vit
from transformers import AutoModelForImageClassification, ConvNextConfig

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.cli.errors import UsageError
from smmix_hf.cli.train import main
from smmix_hf.data.sources import check_labels, class_names
from smmix_hf.data.transforms import collate_image_batch

DEMO = "demo"  # the packaged recipe, by name
QUICK = ["--max_steps", "2", "--disable_tqdm", "true", "--max_eval_samples", "16"]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


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


def smmix_train(*argv: str, cwd, debug: bool = False) -> subprocess.CompletedProcess:
    """``python -m smmix_hf`` (the ``smmix-train`` entry point) in a real subprocess, offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("SMMIX_DEBUG", None)
    if debug:
        env["SMMIX_DEBUG"] = "1"
    command = [sys.executable, "-m", "smmix_hf", *argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def usage_error_line(result: subprocess.CompletedProcess) -> str:
    """The one error line of a usage error; fails on a traceback, a second error line or another exit status."""
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("smmix-train: error: ")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-3000:]
    return errors[0].removeprefix("smmix-train: error: ")


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
        (["--config", "demo", "--motivation_warmup_mixing", "cutmx"], "argument --motivation_warmup_mixing/"
         "--motivation-warmup-mixing: invalid choice: 'cutmx' (choose from 'random_windows', 'cutmix', "
         "'cutmix_then_random_windows') (see smmix-train --help)"),
    ],
    ids=["bad-value", "unknown-flag", "unknown-recipe", "missing-model", "config-validation", "data-check",
         "warmup-ratio-range", "warmup-both-given", "warmup-epochs-nan", "warmup-mixing-choice"],
)  # fmt: skip
def test_usage_errors_print_one_line_and_exit_2(argv, expected, tmp_path):
    result = smmix_train(*argv, "--output_dir", str(tmp_path / "run"), cwd=tmp_path)
    assert expected in usage_error_line(result)
    assert not (tmp_path / "run").exists()


def test_smmix_debug_shows_the_traceback_of_a_usage_error(tmp_path):
    result = smmix_train("--config", "demo", "--mixup_alpha", "0", "--output_dir", str(tmp_path), cwd=tmp_path,
                         debug=True)  # fmt: skip
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "in validate_smmix" in result.stderr
    assert "smmix_hf.cli.errors.UsageError: mixup_alpha must be > 0" in result.stderr
    assert "smmix-train: error:" not in result.stderr


def test_a_failure_during_training_keeps_its_traceback(tmp_path):
    """The same kind of exception as a usage error (a ValueError) raised once training runs is not one."""
    folder = write_image_folder(tmp_path / "images", records(16, 2, corrupt=(5,)))
    result = smmix_train(
        "--config", "demo", "--dataset_name", "", "--train_dir", str(folder), "--validation_dir", str(folder),
        "--strict_images", "true", "--dataloader_num_workers", "0", "--output_dir", str(tmp_path / "run"), *QUICK,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback (most recent call last)" in result.stderr and "trainer.train(" in result.stderr
    assert "ImageDecodeError" in result.stderr and "s00005.png" in result.stderr
    assert "smmix-train: error:" not in result.stderr
