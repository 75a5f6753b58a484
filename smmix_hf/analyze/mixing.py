"""Mixing a labelled evaluation batch the way a training method would (SMMix or CutMix), reproducibly."""

from __future__ import annotations

import torch
from torch import nn

from smmix_hf.backbones.base import backbone_for
from smmix_hf.backbones.probe import motivated_forward
from smmix_hf.methods import ANALYSIS_METHODS, build_analysis_method
from smmix_hf.mix_examples import MixExample
from smmix_hf.motivator import Motivator

__all__ = ["EVAL_MIX_METHODS", "BatchMixer"]

EVAL_MIX_METHODS = ANALYSIS_METHODS


class BatchMixer:
    """Mixes batches with one of :data:`EVAL_MIX_METHODS` as in training, without Mixup batches in between.

    The method object is the one training uses (:func:`smmix_hf.methods.build_analysis_method`). Sample ``i``
    takes its source from ``B-1-i``. SMMix windows (Eq. 7-8) have the training draw of their side within
    ``region_scale`` and are placed by the attention of ``scorer`` (default: ``model`` itself, i.e.
    self-motivated; or another model's, resampled to ``model``'s grid as in
    :class:`~smmix_hf.motivator.Motivator`). CutMix boxes have λ ~ Beta(``cutmix_alpha``, ``cutmix_alpha``).
    Draws come from a generator seeded with ``seed``, so two models scored with the same seed see the same
    CutMix boxes and SMMix window sizes.
    """

    def __init__(
        self,
        model: nn.Module,
        method: str,
        *,
        scorer: nn.Module | None = None,
        region_scale: tuple[float, float] = (0.25, 0.75),
        cutmix_alpha: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.method = build_analysis_method(method, region_scale=region_scale, cutmix_alpha=cutmix_alpha, seed=seed)
        self.model = model
        self.backbone = backbone_for(model)
        self.motivator = Motivator(scorer) if scorer is not None else None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> MixExample:
        """The mixed batch, its windows and the scores that placed them (shown for CutMix too)."""
        size = (images.shape[-2], images.shape[-1])
        grid = self.backbone.token_grid(size)
        if self.motivator is not None:
            clean_logits, scores = self.motivator(images, grid)
        else:
            clean_logits, scores = motivated_forward(self.model, images)
        draw = self.method.draw(size, grid)
        mixed = self.method.mix(images, draw, clean_logits, scores)
        return self.method.example(images, labels, mixed, clean_logits, scores)
