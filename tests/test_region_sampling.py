"""SMMix's window-size draw against the official code's distribution and the paper's, by χ² tests;
Tab. 8's U(0, 1); degenerate token grids; timm's mixing knobs (mix_prob, cutmix_minmax, the switch)."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import pytest
import torch
from scipy.stats import chisquare
from tiny_data import digits_split
from tiny_models import tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.methods import MixSampler

DRAWS = 20_000


def sampler(**overrides) -> MixSampler:
    settings = dict(
        mix_method="smmix", mixup_prob=0.0, mixup_alpha=0.8, cutmix_alpha=1.0, region_scale=(0.25, 0.75), seed=0
    )
    return MixSampler(**{**settings, **overrides})


def side_counts(mix_sampler: MixSampler, grid: int) -> Counter[int]:
    counts: Counter[int] = Counter()
    for _ in range(DRAWS):
        h, w = mix_sampler.draw((grid * 16, grid * 16), (grid, grid)).region_size
        assert h == w
        counts[h] += 1
    return counts


def official_probabilities(grid: int, low: float, high: float) -> dict[int, float]:
    """The official code: an integer side uniformly from floor(low·g) … floor(high·g) (random.randint)."""
    sides = range(math.floor(low * grid), math.floor(high * grid) + 1)
    return {side: 1 / len(sides) for side in sides}


def continuous_probabilities(grid: int, low: float, high: float) -> dict[int, float]:
    """The paper's wording: δ ~ U(low, high), side floor(δ·g); P(side = s) = |[s, s+1) ∩ [low·g, high·g)| / width."""
    width = (high - low) * grid
    return {
        side: (min(side + 1, high * grid) - max(side, low * grid)) / width
        for side in range(math.floor(low * grid), math.ceil(high * grid))
    }


def chi_square_p(counts: Counter[int], probabilities: dict[int, float]) -> float:
    assert set(counts) <= set(probabilities), (counts, probabilities)
    sides = sorted(probabilities)
    return chisquare([counts[side] for side in sides], [DRAWS * probabilities[side] for side in sides]).pvalue


@pytest.mark.parametrize("grid", [7, 14])
def test_official_sampling_is_uniform_over_integer_sides(grid):
    counts = side_counts(sampler(), grid)
    assert chi_square_p(counts, official_probabilities(grid, 0.25, 0.75)) > 1e-3
    if grid == 7:  # 7×7: P(side 1) is 0.2 here, 0.071 under the continuous draw; the test tells them apart
        assert counts[1] / DRAWS == pytest.approx(0.2, abs=0.01)
        assert chi_square_p(counts, continuous_probabilities(grid, 0.25, 0.75)) < 1e-6


@pytest.mark.parametrize("grid", [7, 14])
def test_continuous_sampling_floors_a_uniform_ratio(grid):
    counts = side_counts(sampler(region_sampling="continuous"), grid)
    assert chi_square_p(counts, continuous_probabilities(grid, 0.25, 0.75)) > 1e-3
    if grid == 7:
        assert counts[1] / DRAWS == pytest.approx(0.25 / 3.5, abs=0.01)
        assert chi_square_p(counts, official_probabilities(grid, 0.25, 0.75)) < 1e-6


@pytest.mark.parametrize("region_sampling", ["official", "continuous"])
def test_tab8_full_range_keeps_one_token_on_each_side(region_sampling):
    mix_sampler = sampler(region_scale=(0.0, 1.0), region_sampling=region_sampling)
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
        mixup_switch_prob=0.0,
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
    mix_sampler = sampler(mix_prob=0.3, mixup_prob=0.5)
    methods = Counter(mix_sampler.draw((32, 32), (4, 4)).method for _ in range(DRAWS))
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


def test_mixup_prob_is_a_deprecated_alias_of_mixup_switch_prob(tmp_path, monkeypatch):
    monkeypatch.setattr("smmix_hf.config._WARNED", set())  # the warning is given once per process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = trainer_config(tmp_path, mixup_switch_prob=0.5, mixup_prob=0.25)
    assert args.mixup_switch_prob == 0.25
    assert any("mixup_switch_prob" in str(warning.message) for warning in caught)


def test_per_process_draws_seed_each_process_apart(tmp_path):
    """Shared draws: every process makes the same choices; per-process draws: seed + rank."""
    shared = [trainer_config(tmp_path, seed=5)]
    own = trainer_config(tmp_path, seed=5, per_process_draws=True)
    first = SMMixTrainer(model=tiny_vit(), args=shared[0], data_collator=collate_image_batch).method
    second = SMMixTrainer(model=tiny_vit(), args=own, data_collator=collate_image_batch).method
    reference = sampler(seed=5, mixup_prob=0.0)
    grid = (4, 4)
    draws = [
        (first.draw((32, 32), grid), second.draw((32, 32), grid), reference.draw((32, 32), grid)) for _ in range(50)
    ]
    assert all(a == c for a, _, c in draws)  # rank 0 of a single process: seed + 0 either way
