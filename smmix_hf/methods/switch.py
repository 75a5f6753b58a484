"""The DeiT recipe's per-batch choice as a composition of methods (timm's ``Mixup`` with ``switch_prob``).

SMMix replaces CutMix in the DeiT recipe and alternates with Mixup at p = 0.5 (the paper's ImageNet
setting). Each batch is, with one uniform draw per decision and in timm's order: unmixed from
``mix_off_epoch`` on (no draw); unmixed unless the first uniform is below ``mix_prob``; then, when the method
has an alternative, the window method (the primary: SMMix, CutMix, TransMix) if the second uniform is below
``mixup_switch_prob``, Mixup otherwise. ``mixup_switch_prob`` is thus timm's ``switch_prob`` (the probability
of CutMix) and the official SMMix code's ``switch_prob`` (the probability of SMMix).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from smmix_hf.draws import MixRandom
from smmix_hf.methods.base import MixDraw, Mixed, MixMethod, MixSettings, RunPosition

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe

__all__ = ["MixSwitch"]

_ONLY_CHOOSES = "MixSwitch only chooses; the method of its draw mixes the batch and computes the losses."


class MixSwitch(MixMethod):
    """``primary`` with probability ``mixup_switch_prob``, else ``alternative``; ``unmixed`` when not mixing.

    All three share one :class:`~smmix_hf.draws.MixRandom`, so :meth:`state_dict` checkpoints every draw.
    :meth:`draw` returns the chosen method's draw; that method, not the switch, mixes the batch and computes
    its losses.
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
        """The method of the next batch ``at`` a position of its run (draws from the shared numpy generator).

        As timm's batch mode: ``u₁ < mix_prob`` mixes at all, then ``u₂ < mixup_switch_prob`` picks the window
        method over Mixup. Both uniforms are drawn whatever the probabilities, so the stream does not depend on
        them.
        """
        settings = self.settings
        epoch = 0.0 if at is None else at.epoch
        off = settings.mix_off_epoch is not None and epoch >= settings.mix_off_epoch
        if off or not self.primary.pairs_images:
            return self.unmixed
        if self.random.numpy.random() >= settings.mix_prob:
            return self.unmixed
        if self.alternative is None:
            return self.primary
        return self.primary if self.random.numpy.random() < settings.mixup_switch_prob else self.alternative

    def draw(self, image_size: tuple[int, int], grid: tuple[int, int] | None, at: RunPosition | None = None) -> MixDraw:
        return self.choose(at).draw(image_size, grid, at)

    def mix(
        self,
        images: torch.Tensor,
        draw: MixDraw,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> Mixed:
        raise TypeError(_ONLY_CHOOSES)

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
        raise TypeError(_ONLY_CHOOSES)

    def recipe(self) -> dict[str, object]:
        return self.primary.recipe()
