"""CutMix (Yun et al., 2019): a box of the source replaces the same box of the target; λ is its area share."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import torch

from smmix_hf.draws import draw_cutmix_box
from smmix_hf.losses import mixed_soft_target, soft_target_cross_entropy
from smmix_hf.methods.base import MixDraw, Mixed, MixMethod, RunPosition
from smmix_hf.mixing import cutmix_images

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe
    from smmix_hf.mix_examples import MixExample

__all__ = ["CutMix", "box_token_mask"]


def box_token_mask(
    box: tuple[int, int, int, int], image_size: tuple[int, int], grid: tuple[int, int], batch_size: int
) -> torch.Tensor:
    """The tokens of a ``grid`` whose patch's top-left pixel lies in the pixel ``box``: bool ``[B, gh, gw]``.

    This is nearest-neighbour downsampling of the box's pixel mask to the token grid.
    """
    top, bottom, left, right = box
    (height, width), (gh, gw) = image_size, grid
    rows = torch.arange(gh) * (height // gh)
    cols = torch.arange(gw) * (width // gw)
    inside = ((rows >= top) & (rows < bottom))[:, None] & ((cols >= left) & (cols < right))[None, :]
    return inside.expand(batch_size, gh, gw)


class CutMix(MixMethod):
    """The box has area ``(1-λ)·H·W`` with λ ~ Beta(``cutmix_alpha``, ``cutmix_alpha``), centred at random and
    clipped (or side shares from ``cutmix_minmax``); L_cls of Eq. 9 with λ the clipped box's area share, or
    the per-sample λ of its label re-weighting (TransMix)."""

    pastes_window = True

    @property
    def needs_probe(self) -> bool:
        return self.reweighting is not None

    def check_model(self, probe: SMMixProbe | None, image_size: tuple[int, int] | None) -> None:
        if self.reweighting is not None:
            self.reweighting.check_model(probe)

    def draw(self, image_size: tuple[int, int], grid: tuple[int, int] | None, at: RunPosition | None = None) -> MixDraw:
        settings = self.settings
        box = draw_cutmix_box(self.random.numpy, image_size, settings.cutmix_alpha, settings.cutmix_minmax)
        return MixDraw(self, box=box, grid_size=grid)

    def mix(
        self,
        images: torch.Tensor,
        draw: MixDraw,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> Mixed:
        result = cutmix_images(images, draw.box)
        mask = None
        if self.reweighting is not None:
            size = (images.shape[-2], images.shape[-1])
            mask = box_token_mask(draw.box, size, draw.grid_size, images.shape[0]).to(images.device)
        return Mixed(result.images, result.source_index, result.source_fraction, draw, mask, result)

    def mixed_forward(self, probe: SMMixProbe | None, mixed: Mixed) -> AbstractContextManager[Any]:
        if self.reweighting is None:
            return nullcontext()
        return self.reweighting.mixed_forward(probe, (mixed.images.shape[-2], mixed.images.shape[-1]))

    def losses(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        probe: SMMixProbe | None = None,
    ) -> dict[str, torch.Tensor]:
        num_classes, smoothing = logits.shape[-1], self.settings.label_smoothing
        fraction: float | torch.Tensor = mixed.source_fraction
        if self.reweighting is not None:
            fraction = self.reweighting.source_fraction(mixed.source_fraction, mixed.source_mask, probe)
        target = mixed_soft_target(labels, mixed.source_index, fraction, num_classes, smoothing)
        return {"loss_cls": soft_target_cross_entropy(logits, target)}

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

        return MixExample.from_cutmix(images, labels, mixed.result, mixed.draw.box, step, scores, method=self.name)

    def recipe(self) -> dict[str, object]:
        recipe: dict[str, object] = {"cutmix_alpha": self.settings.cutmix_alpha}
        if self.reweighting is not None:
            recipe["label_reweighting"] = self.reweighting.name
        return recipe
