"""Evaluating a checkpoint alone, and on a subset of its classes (ImageNet-A / -R style, paper Tab. 5)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from data_files import single_intra_op_thread
from PIL import Image
from tiny_models import tiny_vit
from transformers import ViTImageProcessor

from smmix_hf.cli.train import main
from smmix_hf.data.class_subset import read_class_subset, subset_topk_ids
from smmix_hf.data.transforms import build_eval_transform, settings_from_image_processor

one_thread = pytest.fixture(autouse=True)(single_intra_op_thread)
LABEL2ID = {f"n{index:08d}": index for index in range(10)}


def test_subset_file_takes_class_ids_or_label_names(tmp_path):
    subset = tmp_path / "subset.txt"
    subset.write_text("# ImageNet-R style: line k = the model class of evaluation label k\nn00000007\n2\n\nn00000005\n")
    assert read_class_subset(subset, LABEL2ID, 10) == [7, 2, 5]
    subset.write_text("7\nstingray\n")
    with pytest.raises(ValueError, match=r"line 2 of .*'stingray' is neither a class id \(0\.\.9\) nor a label name"):
        read_class_subset(subset, LABEL2ID, 10)
    subset.write_text("7\nn00000007\n")
    with pytest.raises(ValueError, match="lists model class 7 twice"):
        read_class_subset(subset, LABEL2ID, 10)


def test_topk_ranks_only_the_subset_and_returns_model_ids():
    logits = torch.tensor([[0.0, 9.0, 1.0, 0.0, 0.0, 3.0, 0.0, 2.0, 0.0, 0.0]])
    assert subset_topk_ids([7, 2, 5])(logits, torch.zeros(1)).tolist() == [[5, 7, 2]]


@pytest.fixture
def checkpoint_and_data(tmp_path):
    """A 10-class checkpoint and a 3-class evaluation folder whose classes are the model's 7, 2 and 5."""
    torch.manual_seed(0)
    model = tiny_vit(id2label={index: name for name, index in LABEL2ID.items()}, label2id=LABEL2ID)
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    rng = np.random.default_rng(0)
    images = {}
    for folder in ("a_n00000007", "b_n00000002", "c_n00000005"):
        (tmp_path / "eval" / folder).mkdir(parents=True)
        for index in range(4):
            image = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
            image.save(tmp_path / "eval" / folder / f"{index}.png")
            images.setdefault(folder, []).append(image)
    (tmp_path / "subset.txt").write_text("n00000007\nn00000002\nn00000005\n")
    return model, processor, images, tmp_path


def test_checkpoint_evaluated_alone_on_a_class_subset(checkpoint_and_data):
    model, processor, images, root = checkpoint_and_data
    metrics = main([
        "--model", str(root / "ckpt"), "--validation_dir", str(root / "eval"), "--eval_class_subset",
        str(root / "subset.txt"), "--do_train", "false", "--do_eval", "--output_dir", str(root / "out"),
        "--crop_pct", "1.0", "--interpolation", "bicubic", "--use_cpu", "true", "--report_to", "none",
        "--per_device_eval_batch_size", "5",
    ])  # fmt: skip
    transform = build_eval_transform(settings_from_image_processor(processor, crop_pct=1.0, interpolation="bicubic"))
    pixels = torch.stack([transform(image) for folder in sorted(images) for image in images[folder]])
    targets = torch.tensor([model_id for model_id in (7, 2, 5) for _ in range(4)])
    model.eval()
    with torch.no_grad():
        logits = model(pixel_values=pixels).logits
    predicted = torch.tensor([7, 2, 5])[logits[:, [7, 2, 5]].argmax(-1)]
    assert metrics["eval_top1"] == pytest.approx((predicted == targets).float().mean().item())
    assert metrics["eval_top5"] == 1.0
    assert metrics["eval_loss"] == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)


def test_without_a_subset_labels_are_model_ids_and_differing_names_are_reported(checkpoint_and_data, caplog):
    _, _, _, root = checkpoint_and_data
    with caplog.at_level(logging.WARNING, logger="smmix_hf"):
        metrics = main([
            "--model", str(root / "ckpt"), "--validation_dir", str(root / "eval"), "--do_train", "false", "--do_eval",
            "--output_dir", str(root / "out"), "--crop_pct", "1.0", "--use_cpu", "true", "--report_to", "none",
        ])  # fmt: skip
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    assert "the evaluation labels are named ['a_n00000007', 'b_n00000002', 'c_n00000005']" in caplog.text
