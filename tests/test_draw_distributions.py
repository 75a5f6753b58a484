"""The distributions of the draws themselves, against timm's own draws, Beta(α, α) and the official SMMix code.

Each test checks our draws with a seeded goodness-of-fit test (Kolmogorov-Smirnov for continuous quantities,
χ² or binomial for discrete ones) and also shows its power: the distribution that a plausible bug would give
is rejected by the same test at the same sample size. The bugs: CutMix's box side drawn as ``1-λ`` instead of
``√(1-λ)``; CutMix's λ or Mixup's λ drawn with the other method's α; ``mixup_switch_prob`` read as the
probability of Mixup; ``per_process_draws`` ignored (checked with 2 real processes).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import timm.data.mixup as timm_mixup
from launching import free_port
from scipy.stats import beta, binomtest, chisquare, ks_2samp, kstest
from scripted_random import numpy_with_random

from smmix_hf.methods import MixSettings, MixSwitch, build_mix_method

DRAWS = 4000
ACCEPT = 1e-3  # our draws must not be rejected at this level (the seeds are fixed, so this is deterministic)
REJECT = 1e-9  # the bug's distribution must be rejected at this level
IMAGE = (224, 224)


def sampler(seed: int = 0, **overrides) -> MixSwitch:
    return build_mix_method(MixSettings(**overrides), seed)


def timm_box_area_shares(monkeypatch: pytest.MonkeyPatch, cutmix_alpha: float, side=lambda lam: lam) -> np.ndarray:
    """Clipped box areas / image area from timm's own ``cutmix_bbox_and_lam`` (legacy ``np.random``, seed 0).
    ``side`` maps timm's λ to the λ whose box it draws: the identity for timm's boxes; ``1 - (1-λ)²`` gives
    boxes of side ``(1-λ)·H``, the bug."""
    monkeypatch.setattr(timm_mixup, "np", numpy_with_random(np.random.RandomState(0)))
    shares = []
    for _ in range(DRAWS):
        lam = timm_mixup.np.random.beta(cutmix_alpha, cutmix_alpha)
        _, target_share = timm_mixup.cutmix_bbox_and_lam(IMAGE, side(lam), correct_lam=True)
        shares.append(1.0 - target_share)
    return np.array(shares)


def our_box_area_shares(**settings) -> np.ndarray:
    method = sampler(mix_method="cutmix", mixup_switch_prob=1.0, **settings)
    boxes = [method.draw(IMAGE, None).box for _ in range(DRAWS)]
    return np.array([(bottom - top) * (right - left) for top, bottom, left, right in boxes]) / math.prod(IMAGE)


def test_cutmix_box_areas_follow_timms(monkeypatch):
    """The box side is ``√(1-λ)`` of the image's, λ ~ Beta(cutmix_alpha) and not Beta(mixup_alpha)."""
    ours = our_box_area_shares(mixup_alpha=0.2, cutmix_alpha=1.0)
    timms = timm_box_area_shares(monkeypatch, cutmix_alpha=1.0)
    assert ks_2samp(ours, timms).pvalue > ACCEPT
    side_one_minus_lambda = timm_box_area_shares(monkeypatch, 1.0, side=lambda lam: 1 - (1 - lam) ** 2)
    assert ks_2samp(ours, side_one_minus_lambda).pvalue < REJECT
    with_mixup_alpha = timm_box_area_shares(monkeypatch, cutmix_alpha=0.2)
    assert ks_2samp(ours, with_mixup_alpha).pvalue < REJECT


@pytest.mark.parametrize("mix_method", ["mixup", "cutmix"])
def test_mixup_weights_follow_beta_of_mixup_alpha(mix_method):
    """Mixup's λ ~ Beta(mixup_alpha, mixup_alpha), alone or as the DeiT switch's alternative to CutMix."""
    method = sampler(mix_method=mix_method, mixup_switch_prob=0.0, mixup_alpha=0.2, cutmix_alpha=1.0)
    weights = np.array([method.draw(IMAGE, None).source_fraction for _ in range(DRAWS)])
    assert kstest(weights, beta(0.2, 0.2).cdf).pvalue > ACCEPT
    assert kstest(weights, beta(1.0, 1.0).cdf).pvalue < REJECT  # λ drawn with cutmix_alpha


def test_mixup_switch_prob_is_the_probability_of_smmix():
    """The official code's ``--mixup-switch-prob`` (SMMix when ``rand() < switch_prob``) and timm's
    ``switch_prob`` (CutMix when ``rand() < switch_prob``): the probability of the window method."""
    method = sampler(mix_method="smmix", mixup_switch_prob=0.8)
    counts = Counter(method.choose().name for _ in range(DRAWS))
    assert set(counts) == {"smmix", "mixup"}
    assert binomtest(counts["smmix"], DRAWS, 0.8).pvalue > ACCEPT
    assert binomtest(counts["smmix"], DRAWS, 0.2).pvalue < REJECT  # the probability of Mixup


# ---- SMMix's window size (Eq. 7) ----

WINDOW_DRAWS = 20_000


def side_counts(method: MixSwitch, grid: int) -> Counter[int]:
    counts: Counter[int] = Counter()
    for _ in range(WINDOW_DRAWS):
        h, w = method.draw((grid * 16, grid * 16), (grid, grid)).region_size
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
    return chisquare([counts[side] for side in sides], [WINDOW_DRAWS * probabilities[side] for side in sides]).pvalue


@pytest.mark.parametrize("grid", [7, 14])
def test_official_sampling_is_uniform_over_integer_sides(grid):
    counts = side_counts(sampler(mixup_switch_prob=1.0), grid)
    assert chi_square_p(counts, official_probabilities(grid, 0.25, 0.75)) > ACCEPT
    if grid == 7:  # 7×7: P(side 1) is 0.2 here, 0.071 under the continuous draw; the test tells them apart
        assert counts[1] / WINDOW_DRAWS == pytest.approx(0.2, abs=0.01)
        assert chi_square_p(counts, continuous_probabilities(grid, 0.25, 0.75)) < REJECT


@pytest.mark.parametrize("grid", [7, 14])
def test_continuous_sampling_floors_a_uniform_ratio(grid):
    counts = side_counts(sampler(mixup_switch_prob=1.0, region_sampling="continuous"), grid)
    assert chi_square_p(counts, continuous_probabilities(grid, 0.25, 0.75)) > ACCEPT
    if grid == 7:
        assert counts[1] / WINDOW_DRAWS == pytest.approx(0.25 / 3.5, abs=0.01)
        assert chi_square_p(counts, official_probabilities(grid, 0.25, 0.75)) < REJECT


# ---- two real processes ----


def test_per_process_draws_differ_across_ranks_and_shared_draws_do_not(tmp_path):
    """``per_process_draws``: each process seeds its draws with seed + rank, as the official code; by default all
    processes share them. Two gloo processes on CPU (``tests/distributed/draws_per_rank.py``)."""
    script = Path(__file__).resolve().parent / "distributed" / "draws_per_rank.py"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        str(script),
    ]  # fmt: skip
    env = {**os.environ, "SMMIX_RECORD_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    first, second = (json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1))
    assert first["shared"] == second["shared"]
    assert first["per_process"] == first["shared"]  # rank 0: seed + 0
    differing = sum(a != b for a, b in zip(first["per_process"], second["per_process"], strict=True))
    assert differing >= len(first["per_process"]) // 2
