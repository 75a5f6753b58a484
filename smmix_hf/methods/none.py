"""No mixing: plain soft-target cross-entropy on the label-smoothed label."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from smmix_hf.losses import smoothed_one_hot, soft_target_cross_entropy
from smmix_hf.methods.base import MixDraw, Mixed, MixMethod, RunPosition

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe

__all__ = ["NoMix"]


class NoMix(MixMethod):
    """Trains on the images as they are; also the unmixed batches of ``mix_prob`` and ``mix_off_epoch``."""

    pairs_images = False

    def draw(self, image_size: tuple[int, int], grid: tuple[int, int] | None, at: RunPosition | None = None) -> MixDraw:
        return MixDraw(self)

    def mix(
        self,
        images: torch.Tensor,
        draw: MixDraw,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> Mixed:
        return Mixed(images, torch.arange(images.shape[0], device=images.device), 0.0, draw)

    def losses(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        probe: SMMixProbe | None = None,
    ) -> dict[str, torch.Tensor]:
        target = smoothed_one_hot(labels, logits.shape[-1], self.settings.label_smoothing)
        return {"loss_cls": soft_target_cross_entropy(logits, target)}
