"""Mixup (Zhang et al., 2018): pixel-wise blend with λ ~ Beta(α, α), the label blended with the same λ."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from smmix_hf.losses import mixed_soft_target, soft_target_cross_entropy
from smmix_hf.methods.base import MixDraw, Mixed, MixMethod, RunPosition
from smmix_hf.mixing import mixup_images

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe

__all__ = ["Mixup"]


class Mixup(MixMethod):
    """``(1-λ)·target + λ·source`` pixel by pixel with λ ~ Beta(``mixup_alpha``, ``mixup_alpha``); L_cls of
    Eq. 9 on ``λ·y_src + (1-λ)·y_tgt``.

    The draw is timm's ``lam``, the *target's* weight, so λ = 1 - draw: the same stream gives timm's batch.
    Beta(α, α) is symmetric, so λ has the same distribution either way."""

    def draw(self, image_size: tuple[int, int], grid: tuple[int, int] | None, at: RunPosition | None = None) -> MixDraw:
        alpha = self.settings.mixup_alpha
        target_share = float(self.random.numpy.beta(alpha, alpha))
        return MixDraw(self, source_fraction=1.0 - target_share)

    def mix(
        self,
        images: torch.Tensor,
        draw: MixDraw,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> Mixed:
        result = mixup_images(images, draw.source_fraction)
        return Mixed(result.images, result.source_index, result.source_fraction, draw, result=result)

    def losses(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        probe: SMMixProbe | None = None,
    ) -> dict[str, torch.Tensor]:
        num_classes, smoothing = logits.shape[-1], self.settings.label_smoothing
        target = mixed_soft_target(labels, mixed.source_index, mixed.source_fraction, num_classes, smoothing)
        return {"loss_cls": soft_target_cross_entropy(logits, target)}
