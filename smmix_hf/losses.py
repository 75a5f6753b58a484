"""SMMix's training objective as pure tensor math (Eq. 9-14).

Conventions: ``target`` is the sample being trained on, ``source`` the sample whose window (or
pixels) was mixed into it; ``source_fraction`` is the paper's λ, the source's share of the mixed
image. Labels carry label smoothing ε in every soft target: ``1 - ε + ε/C`` on the class and
``ε/C`` elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from smmix_hf.tokens import pool_region_tokens

__all__ = [
    "consistency_loss",
    "consistency_target",
    "fine_grained_loss",
    "mixed_soft_target",
    "pool_region_tokens",
    "smoothed_one_hot",
    "soft_target_cross_entropy",
]


def smoothed_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot rows ``[B, C]`` with label smoothing ε: ``1 - ε + ε/C`` on the label, ``ε/C`` elsewhere."""
    off_value = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off_value, device=labels.device)
    return targets.scatter_(1, labels[:, None], 1.0 - smoothing + off_value)


def mixed_soft_target(
    labels: torch.Tensor, source_index: torch.Tensor, source_fraction: float, num_classes: int, smoothing: float
) -> torch.Tensor:
    """The mixed label of Eq. 9: ``λ·y_src + (1-λ)·y_tgt`` with smoothed one-hot ``y``."""
    target = smoothed_one_hot(labels, num_classes, smoothing)
    return torch.lerp(target, target[source_index], source_fraction)


def soft_target_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a distribution, averaged over the batch (``L_cls`` of Eq. 9)."""
    return -(soft_targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def fine_grained_loss(
    region_logits: torch.Tensor,
    labels: torch.Tensor,
    source_index: torch.Tensor,
    num_classes: int,
    smoothing: float,
) -> torch.Tensor:
    """``L_fine`` of Eq. 12-13: ½ (CE(inside → y_src) + CE(outside → y_tgt)).

    ``region_logits`` is ``[2, B, C]``: the classifier applied to the inside and outside means.
    """
    target = smoothed_one_hot(labels, num_classes, smoothing)
    inside_loss = soft_target_cross_entropy(region_logits[0], target[source_index])
    outside_loss = soft_target_cross_entropy(region_logits[1], target)
    return 0.5 * (inside_loss + outside_loss)


def consistency_target(
    clean_logits: torch.Tensor, source_index: torch.Tensor, source_fraction: float, mode: str = "logits"
) -> torch.Tensor:
    """The distribution the mixed image's prediction is pulled towards (Eq. 14).

    ``mode="logits"`` mixes the clean logits, ``softmax(λ·z_src + (1-λ)·z_tgt)``, as the official code
    does; ``mode="probs"`` mixes the clean predictions, ``λ·p_src + (1-λ)·p_tgt``, as the paper words it.
    """
    clean_logits = clean_logits.float()
    if mode == "logits":
        return F.softmax(torch.lerp(clean_logits, clean_logits[source_index], source_fraction), dim=-1)
    if mode == "probs":
        probs = F.softmax(clean_logits, dim=-1)
        return torch.lerp(probs, probs[source_index], source_fraction)
    raise ValueError(f"consistency target mode must be 'logits' or 'probs'; got {mode!r}.")


def consistency_loss(mixed_logits: torch.Tensor, target_distribution: torch.Tensor) -> torch.Tensor:
    """``L_con`` of Eq. 14: ``KL(target ‖ softmax(z_mixed))`` summed over classes, averaged over the batch."""
    log_probs = F.log_softmax(mixed_logits.float(), dim=-1)
    return F.kl_div(log_probs, target_distribution, reduction="batchmean")
