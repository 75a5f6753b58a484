"""``save_mix_examples``: PNG grids of the mixed training images, in output_dir and in TensorBoard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from run_configs import short_run_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tiny_data import digits_processor, digits_split
from tiny_models import tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.mix_examples import MixExample, MixExamplesCallback, to_display_images
from smmix_hf.mixing import smmix_images


def make_config(tmp_path, **overrides) -> SMMixConfig:
    settings = dict(
        max_steps=4,
        logging_steps=2,
        mixup_switch_prob=1.0,
    )
    return short_run_config(tmp_path, **{**settings, **overrides})


def train(tmp_path, **overrides) -> SMMixTrainer:
    torch.manual_seed(0)
    trainer = SMMixTrainer(
        model=tiny_vit(id2label={i: str(i) for i in range(10)}),
        args=make_config(tmp_path, **overrides),
        train_dataset=digits_split("train", 32, True),
        data_collator=collate_image_batch,
        processing_class=digits_processor(),
    )
    trainer.train()
    return trainer


def test_smmix_examples_go_to_png_files_and_tensorboard(tmp_path):
    train(tmp_path, save_mix_examples=3, report_to=["tensorboard"])
    pngs = sorted(path.name for path in (tmp_path / "mix_examples").iterdir())
    assert pngs == ["step_000002.png", "step_000004.png"]
    with Image.open(tmp_path / "mix_examples" / pngs[-1]) as grid:
        assert grid.mode == "RGB" and grid.height > 3 * 128 and grid.width > 5 * 128
    (event_file,) = (tmp_path / "runs").rglob("events.out.tfevents.*")
    events = EventAccumulator(str(event_file), size_guidance={"images": 0})
    events.Reload()
    assert "mix_examples/smmix" in events.Tags()["images"]
    assert [event.step for event in events.Images("mix_examples/smmix")] == [2, 4]


def test_cutmix_examples_are_saved_too(tmp_path):
    trainer = train(tmp_path, mix_method="cutmix", save_mix_examples=2, max_steps=2)
    assert trainer.last_mix_example.method == "cutmix"
    assert (tmp_path / "mix_examples" / "step_000002.png").is_file()


def test_nothing_is_kept_by_default(tmp_path):
    trainer = train(tmp_path, max_steps=2)
    assert trainer.last_mix_example is None
    assert not any(isinstance(callback, MixExamplesCallback) for callback in trainer.callback_handler.callbacks)
    assert not (tmp_path / "mix_examples").exists()


def test_rows_show_the_source_window_pasted_onto_the_target_window():
    torch.manual_seed(0)
    images, labels = torch.rand(4, 3, 32, 32), torch.tensor([3, 1, 4, 1])
    scores, logits = torch.rand(4, 4, 4), torch.randn(4, 10)
    mixed = smmix_images(images, scores, (2, 2))
    example = MixExample.from_smmix(images, labels, mixed, scores, logits)
    names = {i: f"class {i}" for i in range(10)}
    identity = {"mean": [0.0] * 3, "std": [1.0] * 3}
    rows = example.rows(2, class_names=names, loss_weights={"cls": 1.0, "fine": 1.0, "con": 1.0}, **identity)
    shown = to_display_images(images, **identity)
    for i, row in enumerate(rows):
        source = 3 - i
        assert np.array_equal(row.source, shown[source]) and np.array_equal(row.target, shown[i])
        assert (row.source_label, row.target_label) == (f"class {labels[source]}", f"class {labels[i]}")
        top, left, height, width = row.target_box
        s_top, s_left, _, _ = row.source_box
        assert (height, width) == (16, 16)
        assert (top, left) == tuple(8 * value for value in mixed.target_corner[i].tolist())
        pasted = row.mixed[top : top + height, left : left + width]
        assert np.array_equal(pasted, shown[source][s_top : s_top + 16, s_left : s_left + 16])
        np.testing.assert_array_equal(row.source_scores, scores[source].numpy())
        assert len(row.consistency_top) == 2 and row.region_labels
        text = " ".join(line for line, _ in row.label_lines())
        assert "lambda = 0.25" in text and f"class {labels[source]} x 0.25" in text and "L_con" in text


def test_negative_counts_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="save_mix_examples must be >= 0"):
        make_config(tmp_path, save_mix_examples=-1)
