"""Tab. 8's U(0, 1) window sizes; degenerate token grids; timm's mixing knobs (mix_prob, cutmix_minmax, the
switch); per-process draws in one process. The draws' distributions are in ``test_draw_distributions.py``."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from tiny_data import digits_split
from tiny_models import tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.methods import MixSettings, MixSwitch, build_mix_method

DRAWS = 20_000


def sampler(seed: int = 0, **overrides) -> MixSwitch:
    """The training draws of ``MixSettings(**overrides)``; by default SMMix on every batch (no Mixup)."""
    return build_mix_method(MixSettings(**{"mixup_switch_prob": 1.0, **overrides}), seed)


@pytest.mark.parametrize("region_sampling", ["official", "continuous"])
def test_tab8_full_range_keeps_one_token_on_each_side(region_sampling):
    mix_sampler = sampler(region_scale_min=0.0, region_scale_max=1.0, region_sampling=region_sampling)
    sizes = {mix_sampler.draw((64, 64), (4, 4)).region_size for _ in range(2000)}
    assert min(h * w for h, w in sizes) >= 1 and max(h * w for h, w in sizes) <= 15
    # δ = 0 floors to 0 tokens and is raised to 1; only the official draw reaches side 4, which leaves one row
    expected = {(1, 1), (2, 2), (3, 3), (3, 4)} if region_sampling == "official" else {(1, 1), (2, 2), (3, 3)}
    assert sizes == expected


def trainer_config(tmp_path, **overrides) -> SMMixConfig:
    settings = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        max_steps=4,
        logging_steps=1,
        save_strategy="no",
        motivation_warmup_mixing="random_windows",  # its first step is an SMMix batch (random windows, L_fine)
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
        mixup_switch_prob=1.0,
    )
    return SMMixConfig(**{**settings, **overrides})


def test_tab8_uniform_0_1_trains(tmp_path):
    torch.manual_seed(0)
    args = trainer_config(tmp_path, region_scale_min=0.0, region_scale_max=1.0)
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, train_dataset=digits_split("train", 32, True), data_collator=collate_image_batch
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 4 and all(math.isfinite(entry["loss"]) and math.isfinite(entry["loss_fine"]) for entry in logs)


def test_a_one_token_grid_is_refused_before_training(tmp_path):
    model = tiny_vit(image_size=16, patch_size=16)
    with pytest.raises(ValueError, match=r"at least 2 image tokens, but the model's token grid is 1x1") as error:
        SMMixTrainer(model=model, args=trainer_config(tmp_path), data_collator=collate_image_batch)
    assert "\n" not in str(error.value)
    SMMixTrainer(model=model, args=trainer_config(tmp_path, mix_method="cutmix"), data_collator=collate_image_batch)


def test_mix_prob_leaves_that_share_of_batches_unmixed():
    mix_sampler = sampler(mix_prob=0.3, mixup_switch_prob=0.5)
    methods = Counter(mix_sampler.choose().name for _ in range(DRAWS))
    assert methods["none"] / DRAWS == pytest.approx(0.7, abs=0.015)
    assert methods["mixup"] / DRAWS == pytest.approx(0.15, abs=0.015)
    assert methods["smmix"] / DRAWS == pytest.approx(0.15, abs=0.015)


def test_cutmix_minmax_boxes_have_side_shares_in_range():
    mix_sampler = sampler(mix_method="cutmix", cutmix_minmax=(0.2, 0.5))
    for _ in range(500):
        top, bottom, left, right = mix_sampler.draw((100, 80), None).box
        assert 20 <= bottom - top < 50 and 16 <= right - left < 40
        assert top >= 0 and bottom <= 100 and left >= 0 and right <= 80


def test_mix_off_epoch_stops_mixing(tmp_path):
    args = trainer_config(tmp_path, max_steps=-1, num_train_epochs=2, mix_off_epoch=1)
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, train_dataset=digits_split("train", 16, True), data_collator=collate_image_batch
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry.get("mix_share_smmix", 0.0) for entry in logs] == [1.0, 1.0, 0.0, 0.0]
    assert [entry.get("mix_share_none", 0.0) for entry in logs] == [0.0, 0.0, 1.0, 1.0]


def test_per_process_draws_seed_each_process_apart(tmp_path):
    """Shared draws: every process makes the same choices; per-process draws: seed + rank."""
    shared = [trainer_config(tmp_path, seed=5)]
    own = trainer_config(tmp_path, seed=5, per_process_draws=True)
    first = SMMixTrainer(model=tiny_vit(), args=shared[0], data_collator=collate_image_batch).method
    second = SMMixTrainer(model=tiny_vit(), args=own, data_collator=collate_image_batch).method
    reference = sampler(seed=5)
    grid = (4, 4)
    draws = [
        (first.draw((32, 32), grid), second.draw((32, 32), grid), reference.draw((32, 32), grid)) for _ in range(50)
    ]
    assert all(a == c for a, _, c in draws)  # rank 0 of a single process: seed + 0 either way
