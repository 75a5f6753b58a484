"""Bad input stops the run early with one line that says what was wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import torch
from PIL import Image
from tiny_data import digits_split
from tiny_models import tiny_vit
from transformers import AutoModelForImageClassification, BeitConfig

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.cli.train import main
from smmix_hf.data.sources import check_labels, class_names
from smmix_hf.data.transforms import collate_image_batch

DEMO = str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
QUICK = ["--max_steps", "2", "--disable_tqdm", "true", "--max_eval_samples", "16"]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_missing_column_lists_the_columns(tmp_path):
    with pytest.raises(ValueError) as error:
        main(["--config", DEMO, "--output_dir", str(tmp_path), "--label_column_name", "labels", *QUICK])
    assert "label column 'labels' is not in the dataset; its columns are: image, label" in one_line(error)


def test_image_size_not_divisible_by_the_patch(tmp_path):
    overrides = (
        "image_size=30,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"
    )
    with pytest.raises(ValueError) as error:
        main(["--config", DEMO, "--output_dir", str(tmp_path), "--config_overrides", overrides, *QUICK])
    assert "image size 30x30 is not divisible by the patch size 8" in one_line(error)


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    model = AutoModelForImageClassification.from_config(
        BeitConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=64, num_labels=10)
    )  # fmt: skip
    with pytest.raises(ValueError) as error:
        SMMixTrainer(model=model, args=SMMixConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none"))
    assert "SMMix does not support model_type 'beit'" in one_line(error)
    assert "supported model types: vit, deit, swin, pvt" in one_line(error)


def test_output_dir_holding_another_run_is_refused_unless_resuming_or_overwriting(tmp_path):
    output_dir = tmp_path / "run"
    main(["--config", DEMO, "--output_dir", str(output_dir), "--save_strategy", "steps", "--save_steps", "1", *QUICK])
    with pytest.raises(ValueError) as error:
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
        logging_steps=5, use_cpu=True, report_to="none", disable_tqdm=True, mixup_prob=0.0,
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
