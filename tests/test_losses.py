"""Each loss term against a direct, element-by-element computation of its equation."""

from __future__ import annotations

import math

import pytest
import torch

from smmix_hf.losses import (
    consistency_loss,
    consistency_target,
    fine_grained_loss,
    mixed_soft_target,
    pool_region_tokens,
    smoothed_one_hot,
    soft_target_cross_entropy,
)

EPS = 0.1


def smoothed(label: int, classes: int) -> list[float]:
    return [1 - EPS + EPS / classes if c == label else EPS / classes for c in range(classes)]


def log_softmax(row: list[float]) -> list[float]:
    top = max(row)
    norm = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - norm for v in row]


def cross_entropy(row: list[float], target: list[float]) -> float:
    return -sum(t * lp for t, lp in zip(target, log_softmax(row), strict=True))


@pytest.fixture
def example():
    generator = torch.Generator().manual_seed(7)
    return {
        "logits": torch.randn(4, 5, generator=generator),
        "clean": torch.randn(4, 5, generator=generator),
        "labels": torch.tensor([0, 3, 1, 4]),
        "source_index": torch.tensor([3, 2, 1, 0]),
        "fraction": 0.3,
    }


def test_mixed_label_cross_entropy_eq9(example):
    logits, labels, source, lam = example["logits"], example["labels"], example["source_index"], example["fraction"]
    target = mixed_soft_target(labels, source, lam, 5, EPS)
    loss = soft_target_cross_entropy(logits, target)
    expected = 0.0
    for i in range(4):
        y = [
            lam * s + (1 - lam) * t for s, t in zip(smoothed(labels[source[i]], 5), smoothed(labels[i], 5), strict=True)
        ]
        expected += cross_entropy(logits[i].tolist(), y) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert smoothed_one_hot(labels, 5, EPS).sum(1).allclose(torch.ones(4))


def test_region_pooling_eq10_11():
    tokens = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    mask = torch.tensor([[[True, False], [False, False]], [[False, True], [True, True]]])
    pooled = pool_region_tokens(tokens, mask)
    torch.testing.assert_close(pooled[0, 0], tokens[0, 0])
    torch.testing.assert_close(pooled[1, 0], tokens[0, 1:].mean(0))
    torch.testing.assert_close(pooled[0, 1], tokens[1, 1:].mean(0))
    torch.testing.assert_close(pooled[1, 1], tokens[1, 0])


def test_fine_grained_loss_eq12_13(example):
    labels, source = example["labels"], example["source_index"]
    region_logits = torch.stack((example["logits"], example["clean"]))
    loss = fine_grained_loss(region_logits, labels, source, 5, EPS)
    inside = sum(cross_entropy(region_logits[0, i].tolist(), smoothed(labels[source[i]], 5)) for i in range(4)) / 4
    outside = sum(cross_entropy(region_logits[1, i].tolist(), smoothed(labels[i], 5)) for i in range(4)) / 4
    assert loss.item() == pytest.approx(0.5 * (inside + outside), rel=1e-5)


@pytest.mark.parametrize("mode", ["logits", "probs"])
def test_consistency_loss_eq14(example, mode):
    logits, clean, source, lam = example["logits"], example["clean"], example["source_index"], example["fraction"]
    target = consistency_target(clean, source, lam, mode)
    loss = consistency_loss(logits, target)
    expected = 0.0
    for i in range(4):
        if mode == "logits":
            mixed = [lam * s + (1 - lam) * t for s, t in zip(clean[source[i]].tolist(), clean[i].tolist(), strict=True)]
            q = [math.exp(v) for v in log_softmax(mixed)]
        else:
            p_src = [math.exp(v) for v in log_softmax(clean[source[i]].tolist())]
            p_tgt = [math.exp(v) for v in log_softmax(clean[i].tolist())]
            q = [lam * s + (1 - lam) * t for s, t in zip(p_src, p_tgt, strict=True)]
        log_p = log_softmax(logits[i].tolist())
        expected += sum(qc * (math.log(qc) - lpc) for qc, lpc in zip(q, log_p, strict=True)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert target.sum(-1).allclose(torch.ones(4))


def test_unknown_consistency_mode_is_rejected(example):
    with pytest.raises(ValueError, match="'logits' or 'probs'"):
        consistency_target(example["clean"], example["source_index"], 0.5, "mean")
