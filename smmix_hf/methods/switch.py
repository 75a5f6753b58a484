"""The DeiT recipe's per-batch choice as a composition of methods (timm's ``Mixup`` with ``switch_prob``).

SMMix replaces CutMix in the DeiT recipe and alternates with Mixup at p = 0.5 (the paper's ImageNet
setting). Each batch is, in this order of draws: unmixed from ``mix_off_epoch`` on (no draw) and with
probability ``1 - mix_prob``; otherwise the alternative (Mixup) with probability ``mixup_switch_prob``;
otherwise the primary method.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch

from smmix_hf.draws import MixRandom
from smmix_hf.methods.base import MixDraw, Mixed, MixMethod, MixSettings, RunPosition

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe
    from smmix_hf.mix_examples import MixExample

__all__ = ["MixSwitch"]


class MixSwitch(MixMethod):
    """``primary`` or, with probability ``mixup_switch_prob``, ``alternative``; ``unmixed`` when not mixing.

    All three share one :class:`~smmix_hf.draws.MixRandom`, so :meth:`state_dict` checkpoints every draw.
    :meth:`draw` returns the chosen method's draw; its ``mixer`` mixes the batch, and the other calls
    delegate to it.
    """

    def __init__(
        self,
        name: str,
        settings: MixSettings,
        random: MixRandom,
        primary: MixMethod,
        alternative: MixMethod | None,
        unmixed: MixMethod,
    ) -> None:
        super().__init__(name, settings, random)
        self.primary, self.alternative, self.unmixed = primary, alternative, unmixed
        self.pairs_images = primary.pairs_images
        self.accepts_motivator = primary.accepts_motivator

    @property
    def parts(self) -> tuple[MixMethod, ...]:
        return tuple(part for part in (self.primary, self.alternative, self.unmixed) if part is not None)

    @property
    def needs_probe(self) -> bool:
        return any(part.needs_probe for part in self.parts)

    def check_model(self, probe: SMMixProbe | None, image_size: tuple[int, int] | None) -> None:
        for part in self.parts:
            part.check_model(probe, image_size)

    def choose(self, at: RunPosition | None = None) -> MixMethod:
        """The method of the next batch ``at`` a position of its run (draws from the shared numpy generator)."""
        settings = self.settings
        epoch = 0.0 if at is None else at.epoch
        off = settings.mix_off_epoch is not None and epoch >= settings.mix_off_epoch
        if off or not self.primary.pairs_images:
            return self.unmixed
        if settings.mix_prob < 1 and self.random.numpy.random() >= settings.mix_prob:
            return self.unmixed
        switch_prob = settings.mixup_switch_prob
        if self.alternative is not None and switch_prob > 0 and self.random.numpy.random() < switch_prob:
            return self.alternative
        return self.primary

    def draw(self, image_size: tuple[int, int], grid: tuple[int, int] | None, at: RunPosition | None = None) -> MixDraw:
        return self.choose(at).draw(image_size, grid, at)

    def mix(
        self,
        images: torch.Tensor,
        draw: MixDraw,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> Mixed:
        return draw.mixer.mix(images, draw, clean_logits, scores)

    def mixed_forward(self, probe: SMMixProbe | None, mixed: Mixed) -> AbstractContextManager[Any]:
        return mixed.draw.mixer.mixed_forward(probe, mixed)

    @property
    def loss_terms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for part in self.parts for name in part.loss_terms))

    @property
    def weights(self) -> dict[str, float]:
        return {name: weight for part in reversed(self.parts) for name, weight in part.weights.items()}

    def losses(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        probe: SMMixProbe | None = None,
    ) -> dict[str, torch.Tensor]:
        return mixed.draw.mixer.losses(logits, labels, mixed, clean_logits, probe)

    def example(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
        step: int = 0,
    ) -> MixExample | None:
        return mixed.draw.mixer.example(images, labels, mixed, clean_logits, scores, step)

    def recipe(self) -> dict[str, object]:
        return self.primary.recipe()
