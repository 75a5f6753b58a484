"""SMMix (Chen et al., ICCV 2023): max-min windows placed by the model's own attention, with three losses.

Equation numbers refer to "SMMix: Self-Motivated Image Mixing for Vision Transformers".
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from typing import TYPE_CHECKING, Any

import torch

from smmix_hf.draws import check_token_grid, draw_region_size
from smmix_hf.losses import (
    consistency_loss,
    consistency_target,
    fine_grained_loss,
    mixed_soft_target,
    soft_target_cross_entropy,
)
from smmix_hf.methods.base import MixDraw, Mixed, MixMethod, MixSettings, RunPosition
from smmix_hf.methods.cutmix import CutMix
from smmix_hf.mixing import flip_pairing, paste_windows, random_window_corners, smmix_images

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe
    from smmix_hf.mix_examples import MixExample

__all__ = ["SMMix", "describe_motivation_warmup", "in_motivation_warmup"]


def in_motivation_warmup(settings: MixSettings, at: RunPosition | None, part: float = 1.0) -> bool:
    """Whether a batch ``at`` a position of its training run is in the motivation warm-up: the first
    ``motivation_warmup_epochs`` epochs when that is above 0, else the first ``motivation_warmup_ratio`` share of
    the optimizer steps. ``part`` asks for the first such share of the warm-up instead (0.5: its first half).
    Outside a training run (None) no batch is."""
    if at is None:
        return False
    if settings.motivation_warmup_epochs > 0:
        return at.epoch < part * settings.motivation_warmup_epochs
    return at.progress < part * settings.motivation_warmup_ratio


def warmup_batch_is_cutmix(settings: MixSettings, at: RunPosition | None) -> bool:
    """Whether a warm-up batch is a CutMix batch: all of the warm-up with ``motivation_warmup_mixing="cutmix"``,
    its first half with ``"cutmix_then_random_windows"``."""
    mixing = settings.motivation_warmup_mixing
    if mixing == "cutmix":
        return in_motivation_warmup(settings, at)
    return mixing == "cutmix_then_random_windows" and in_motivation_warmup(settings, at, part=0.5)


def describe_motivation_warmup(settings: MixSettings) -> str:
    """The warm-up in words, for the model card: ``none``, ``N epochs`` or ``P% of steps``."""
    if settings.motivation_warmup_epochs > 0:
        return f"{settings.motivation_warmup_epochs:g} epochs"
    ratio = settings.motivation_warmup_ratio
    return f"{100 * ratio:g}% of steps" if ratio > 0 else "none"


class SMMix(MixMethod):
    """One SMMix batch: the motivated forward (eval mode, no grad) gives the image attention scores (Eq. 6)
    and the clean logits; max-min mixing (Eq. 7-8) pastes the source's most attended window onto the
    target's least attended one; the mixed batch trains with
    ``L = w_cls·L_cls (Eq. 9) + w_fine·L_fine (Eq. 10-13) + w_con·L_con (Eq. 14)``.

    ``max_min_regions=False`` places both windows at random (Tab. 7 ablation); a zero weight drops its term
    (Tab. 7). During the motivation warm-up (:func:`in_motivation_warmup`: by default the first 25% of the
    optimizer steps) the batch needs no motivated forward: its windows are random and L_con is off, or, with
    ``motivation_warmup_mixing="cutmix"``, it is a CutMix batch (drawn from the same generator, so a warm-up
    trains exactly as a CutMix run of the same seed); ``"cutmix_then_random_windows"`` has CutMix batches for the
    first half of the warm-up and random windows for the second. Early in training a model's attention does not yet find
    its objects, and its own attention and near-uniform predictions would otherwise drive the mixing. A label
    re-weighting (TransMix, Tab. 6) changes λ in L_cls only; L_con keeps the area share.
    """

    pastes_window = True
    accepts_motivator = True

    @property
    def needs_probe(self) -> bool:
        return True

    def check_model(self, probe: SMMixProbe | None, image_size: tuple[int, int] | None) -> None:
        if image_size is not None:
            check_token_grid(probe.token_grid(image_size))
        if self.reweighting is not None:
            self.reweighting.check_model(probe)

    def draw(self, image_size: tuple[int, int], grid: tuple[int, int] | None, at: RunPosition | None = None) -> MixDraw:
        if grid is None:
            raise ValueError("SMMix needs the model's token grid to size its window.")
        settings = self.settings
        warmup = in_motivation_warmup(settings, at)
        if warmup and warmup_batch_is_cutmix(settings, at):
            return CutMix("cutmix", settings, self.random, self.reweighting).draw(image_size, grid, at)
        motivated = not warmup and (settings.max_min_regions or settings.consistency_loss_weight > 0)
        size = draw_region_size(self.random.numpy, grid, settings.region_scale, settings.region_sampling)
        return MixDraw(
            self,
            region_size=size,
            grid_size=grid,
            needs_clean_forward=motivated,
            motivation_warmup=warmup,
        )

    def mix(
        self,
        images: torch.Tensor,
        draw: MixDraw,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> Mixed:
        source_index = flip_pairing(images.shape[0], device=images.device)
        if self.settings.max_min_regions and not draw.motivation_warmup:
            result = smmix_images(images, scores, draw.region_size, source_index)
        else:
            grid, size = draw.grid_size, draw.region_size
            corners = [random_window_corners(images.shape[0], grid, size, self.random.torch) for _ in range(2)]
            result = paste_windows(images, grid, size, source_index, *corners)
        return Mixed(result.images, result.source_index, result.source_fraction, draw, result.source_mask, result)

    def mixed_forward(self, probe: SMMixProbe | None, mixed: Mixed) -> AbstractContextManager[Any]:
        """Pools the final tokens inside / outside the window (Eq. 10-11) and runs the re-weighting's hooks."""
        stack = ExitStack()
        if self.settings.fine_loss_weight > 0:
            stack.enter_context(probe.pooling_regions(mixed.source_mask))
        if self.reweighting is not None:
            size = (mixed.images.shape[-2], mixed.images.shape[-1])
            stack.enter_context(self.reweighting.mixed_forward(probe, size))
        return stack

    @property
    def loss_terms(self) -> tuple[str, ...]:
        return tuple(name for name, weight in self.weights.items() if name == "loss_cls" or weight > 0)

    @property
    def weights(self) -> dict[str, float]:
        settings = self.settings
        return {
            "loss_cls": settings.cls_loss_weight,
            "loss_fine": settings.fine_loss_weight,
            "loss_con": settings.consistency_loss_weight,
        }

    def losses(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        probe: SMMixProbe | None = None,
    ) -> dict[str, torch.Tensor]:
        settings = self.settings
        num_classes, smoothing = logits.shape[-1], settings.label_smoothing
        source_index, area = mixed.source_index, mixed.source_fraction
        fraction: float | torch.Tensor = area
        if self.reweighting is not None:
            fraction = self.reweighting.source_fraction(area, mixed.source_mask, probe)
        label = mixed_soft_target(labels, source_index, fraction, num_classes, smoothing)
        terms = {"loss_cls": soft_target_cross_entropy(logits, label)}
        if settings.fine_loss_weight > 0:
            region_logits = probe.take_region_logits()
            terms["loss_fine"] = fine_grained_loss(region_logits, labels, source_index, num_classes, smoothing)
        if settings.consistency_loss_weight > 0 and not mixed.draw.motivation_warmup:
            target = consistency_target(clean_logits, source_index, area, settings.consistency_target)
            terms["loss_con"] = consistency_loss(logits, target)
        return terms

    def example(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
        step: int = 0,
    ) -> MixExample:
        from smmix_hf.mix_examples import MixExample

        target = self.settings.consistency_target
        return MixExample.from_smmix(images, labels, mixed.result, scores, clean_logits, target, step, method=self.name)

    def recipe(self) -> dict[str, object]:
        settings = self.settings
        low, high = settings.region_scale
        recipe: dict[str, object] = {
            "region_scale": f"{settings.region_sampling} {low}-{high}",
            "max_min_regions": settings.max_min_regions,
            "cls_loss_weight": settings.cls_loss_weight,
            "fine_loss_weight": settings.fine_loss_weight,
            "consistency_loss_weight": settings.consistency_loss_weight,
            "consistency_target": settings.consistency_target,
            "motivation_warmup": describe_motivation_warmup(settings),
            "motivation_warmup_mixing": settings.motivation_warmup_mixing,
        }
        if self.reweighting is not None:
            recipe["label_reweighting"] = self.reweighting.name
        return recipe
