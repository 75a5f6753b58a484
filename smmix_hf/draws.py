"""The random draws behind every mixed batch, from one seeded, checkpointable source.

Each training batch draws, on the host and without touching the accelerator: which method mixes
it (SMMix / CutMix, or Mixup with probability ``mixup_prob``), SMMix's window side ratio δ (Eq. 7),
CutMix's box and Mixup's blend weight. All processes of a distributed run share the seed, so they
make the same choice at the same step and their step costs stay equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["MIX_METHODS", "MixDraw", "MixSampler"]

MIX_METHODS = ("smmix", "cutmix", "mixup", "none")


@dataclass(frozen=True)
class MixDraw:
    """What one batch does.

    ``method`` is ``"smmix"``, ``"cutmix"``, ``"mixup"`` or ``"none"``. For SMMix ``region_size`` is the
    window ``(h, w)`` in tokens; for CutMix ``box`` is ``(top, bottom, left, right)`` in pixels; for
    Mixup ``source_fraction`` is the blend weight of the source image.
    """

    method: str
    region_size: tuple[int, int] | None = None
    box: tuple[int, int, int, int] | None = None
    source_fraction: float | None = None


class MixSampler:
    """Draws a :class:`MixDraw` per batch; its state goes into every checkpoint.

    Args:
        mix_method: the primary method, one of :data:`MIX_METHODS`.
        mixup_prob: probability that a batch uses Mixup instead of SMMix / CutMix.
        mixup_alpha: Mixup's λ ~ Beta(α, α).
        cutmix_alpha: CutMix's λ ~ Beta(α, α).
        region_scale: ``(low, high)``; SMMix's side ratio δ ~ U(low, high) and the window is
            ``h = ⌊δ·gh⌋``, ``w = ⌊δ·gw⌋`` tokens (Eq. 7), at least one token per side. ``low == high``
            fixes δ (Tab. 8).
        seed: seeds both generators.
    """

    def __init__(
        self,
        mix_method: str,
        mixup_prob: float,
        mixup_alpha: float,
        cutmix_alpha: float,
        region_scale: tuple[float, float],
        seed: int,
    ) -> None:
        if mix_method not in MIX_METHODS:
            raise ValueError(f"mix_method must be one of {', '.join(MIX_METHODS)}; got {mix_method!r}.")
        self.mix_method = mix_method
        self.mixup_prob = mixup_prob
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.region_scale = region_scale
        self.numpy_generator = np.random.default_rng(seed)
        self.torch_generator = torch.Generator().manual_seed(seed)

    def choose_method(self) -> str:
        """SMMix / CutMix, or Mixup with probability ``mixup_prob``."""
        if self.mix_method in ("none", "mixup"):
            return self.mix_method
        if self.mixup_prob > 0 and self.numpy_generator.random() < self.mixup_prob:
            return "mixup"
        return self.mix_method

    def draw(self, image_size: tuple[int, int], grid_size: tuple[int, int] | None) -> MixDraw:
        """The draw of one batch of images of ``image_size`` pixels on a ``grid_size`` token grid."""
        method = self.choose_method()
        if method == "mixup":
            return MixDraw(
                "mixup", source_fraction=float(self.numpy_generator.beta(self.mixup_alpha, self.mixup_alpha))
            )
        if method == "cutmix":
            return MixDraw("cutmix", box=self._cutmix_box(image_size))
        if method == "smmix":
            if grid_size is None:
                raise ValueError("SMMix needs the model's token grid to size its window.")
            return MixDraw("smmix", region_size=self._region_size(grid_size))
        return MixDraw("none")

    def _region_size(self, grid_size: tuple[int, int]) -> tuple[int, int]:
        low, high = self.region_scale
        side_ratio = low if low == high else float(self.numpy_generator.uniform(low, high))
        return tuple(max(1, math.floor(side_ratio * side)) for side in grid_size)  # type: ignore[return-value]

    def _cutmix_box(self, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """A box of area ``(1-λ)·H·W`` centred uniformly at random, clipped to the image."""
        height, width = image_size
        target_share = self.numpy_generator.beta(self.cutmix_alpha, self.cutmix_alpha)
        cut_ratio = math.sqrt(1.0 - target_share)
        cut_h, cut_w = int(height * cut_ratio), int(width * cut_ratio)
        center_y = int(self.numpy_generator.integers(0, height))
        center_x = int(self.numpy_generator.integers(0, width))
        top, bottom = max(center_y - cut_h // 2, 0), min(center_y + cut_h // 2, height)
        left, right = max(center_x - cut_w // 2, 0), min(center_x + cut_w // 2, width)
        return top, bottom, left, right

    def state_dict(self) -> dict[str, Any]:
        return {"numpy": self.numpy_generator.bit_generator.state, "torch": self.torch_generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.numpy_generator.bit_generator.state = state["numpy"]
        self.torch_generator.set_state(state["torch"])
