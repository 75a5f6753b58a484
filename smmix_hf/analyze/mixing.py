"""Mixing a labelled evaluation batch the way a training method would (SMMix or CutMix), reproducibly."""

from __future__ import annotations

import torch
from torch import nn

from smmix_hf.backbones.base import backbone_for
from smmix_hf.backbones.probe import motivated_forward
from smmix_hf.draws import MixSampler
from smmix_hf.mix_examples import MixExample
from smmix_hf.mixing import cutmix_images, flip_pairing, smmix_images
from smmix_hf.motivator import Motivator

__all__ = ["EVAL_MIX_METHODS", "BatchMixer"]

EVAL_MIX_METHODS = ("smmix", "cutmix")


class BatchMixer:
    """Mixes batches with SMMix (Eq. 7-8) or CutMix as in training, without Mixup batches in between.

    Sample ``i`` takes its source from ``B-1-i``. SMMix windows have a side ratio δ ~ U(``region_scale``)
    and are placed by the attention of ``scorer`` (default: ``model`` itself, i.e. self-motivated; or
    another model's, resampled to ``model``'s grid as in :class:`~smmix_hf.motivator.Motivator`). CutMix
    boxes have λ ~ Beta(``cutmix_alpha``, ``cutmix_alpha``). Draws come from a sampler seeded with
    ``seed``, so two models scored with the same seed see the same CutMix boxes and SMMix window sizes.
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
        if method not in EVAL_MIX_METHODS:
            raise ValueError(f"method must be one of {', '.join(EVAL_MIX_METHODS)}; got {method!r}.")
        self.model = model
        self.method = method
        self.backbone = backbone_for(model)
        self.motivator = Motivator(scorer) if scorer is not None else None
        self.sampler = MixSampler(
            mix_method=method, mixup_prob=0.0, mixup_alpha=1.0, cutmix_alpha=cutmix_alpha,
            region_scale=region_scale, seed=seed,
        )  # fmt: skip

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> MixExample:
        """The mixed batch, its windows and the scores that placed them (shown for CutMix too)."""
        size = (images.shape[-2], images.shape[-1])
        grid = self.backbone.token_grid(size)
        if self.motivator is not None:
            clean_logits, scores = self.motivator(images, grid)
        else:
            clean_logits, scores = self._own_scores(images)
        source_index = flip_pairing(images.shape[0], device=images.device)
        draw = self.sampler.draw(size, grid)
        if self.method == "smmix":
            mixed = smmix_images(images, scores, draw.region_size, source_index)
            return MixExample.from_smmix(images, labels, mixed, scores, clean_logits)
        mixed = cutmix_images(images, draw.box, source_index)
        return MixExample.from_cutmix(images, labels, mixed, draw.box, scores=scores)

    def _own_scores(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean logits and Eq. 6 scores of ``model`` itself, in eval mode; its hooks and mode are restored."""
        return motivated_forward(self.model, images)
