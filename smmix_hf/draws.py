"""The random draws behind every mixed batch, from one seeded, checkpointable source.

Each training batch draws, on the host and without touching the accelerator: whether it is mixed at
all (``mix_prob``), which method mixes it (SMMix / CutMix, or Mixup with probability
``mixup_switch_prob``), SMMix's window size (Eq. 7), CutMix's box and Mixup's blend weight. By default
all processes of a distributed run share the seed, so they make the same choice at the same step and
their step costs stay equal (see ``SMMixConfig.per_process_draws``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["MIX_METHODS", "REGION_SAMPLINGS", "MixDraw", "MixSampler", "check_token_grid", "region_size_range"]

MIX_METHODS = ("smmix", "cutmix", "mixup", "none")
REGION_SAMPLINGS = ("official", "continuous")


def check_token_grid(grid_size: tuple[int, int]) -> None:
    """Refuse a token grid on which no window leaves the target a token of its own (L_fine would be NaN)."""
    gh, gw = grid_size
    if gh * gw < 2:
        raise ValueError(
            f"SMMix needs at least 2 image tokens, but the model's token grid is {gh}x{gw}; use a larger image "
            "size or a smaller patch size, or another mix_method."
        )


def _clamp_window(h: int, w: int, grid_size: tuple[int, int]) -> tuple[int, int]:
    """At least one token per side, and at least one target token left outside the window."""
    gh, gw = grid_size
    h, w = min(max(1, h), gh), min(max(1, w), gw)
    if h == gh and w == gw:
        if gh >= gw:
            h -= 1
        else:
            w -= 1
    return h, w


def region_size_range(grid_size: tuple[int, int], region_scale: tuple[float, float]) -> list[tuple[int, int]]:
    """The window sizes the ``official`` sampling draws from, each with the same probability.

    The official code draws an integer side uniformly from ``⌊low·g⌋ … ⌊high·g⌋`` on its ``g×g`` grid.
    On a non-square grid the height is drawn that way on ``gh`` and the width follows the grid's aspect
    ratio. Sizes are clamped as in :func:`_clamp_window`.
    """
    gh, gw = grid_size
    low, high = region_scale
    sizes = []
    for h in range(math.floor(low * gh), math.floor(high * gh) + 1):
        w = h if gh == gw else round(h * gw / gh)
        sizes.append(_clamp_window(h, w, grid_size))
    return sizes


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
        mixup_prob: probability that a batch uses Mixup instead of SMMix / CutMix (timm's ``switch_prob``).
        mixup_alpha: Mixup's λ ~ Beta(α, α).
        cutmix_alpha: CutMix's λ ~ Beta(α, α).
        region_scale: ``(low, high)`` bounds of SMMix's window side ratio (Eq. 7).
        seed: seeds both generators.
        region_sampling: ``official`` draws an integer side uniformly from ``⌊low·g⌋ … ⌊high·g⌋`` (the code
            behind the paper's numbers); ``continuous`` draws δ ~ U(low, high) and floors ``δ·g`` (the
            paper's wording), which gives the two end sizes half the weight of the others. Either way the
            window has at least one token per side and leaves the target at least one token, so Tab. 8's
            U(0, 1) is accepted. ``low == high`` fixes the size.
        mix_prob: probability that a batch is mixed at all (timm's ``mixup_prob``); otherwise ``none``.
        cutmix_minmax: ``(min, max)`` share of each image side for CutMix's box, drawn uniformly, instead of
            λ ~ Beta (timm's ``cutmix_minmax``).
    """

    def __init__(
        self,
        mix_method: str,
        mixup_prob: float,
        mixup_alpha: float,
        cutmix_alpha: float,
        region_scale: tuple[float, float],
        seed: int,
        region_sampling: str = "official",
        mix_prob: float = 1.0,
        cutmix_minmax: tuple[float, float] | None = None,
    ) -> None:
        if mix_method not in MIX_METHODS:
            raise ValueError(f"mix_method must be one of {', '.join(MIX_METHODS)}; got {mix_method!r}.")
        if region_sampling not in REGION_SAMPLINGS:
            raise ValueError(f"region_sampling must be one of {', '.join(REGION_SAMPLINGS)}; got {region_sampling!r}.")
        self.mix_method = mix_method
        self.mixup_prob = mixup_prob
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.region_scale = region_scale
        self.region_sampling = region_sampling
        self.mix_prob = mix_prob
        self.cutmix_minmax = cutmix_minmax
        self.numpy_generator = np.random.default_rng(seed)
        self.torch_generator = torch.Generator().manual_seed(seed)

    def choose_method(self, mixing: bool = True) -> str:
        """SMMix / CutMix, or Mixup with probability ``mixup_prob``; ``none`` when not ``mixing`` or with
        probability ``1 - mix_prob``."""
        if not mixing or self.mix_method == "none":
            return "none"
        if self.mix_prob < 1 and self.numpy_generator.random() >= self.mix_prob:
            return "none"
        if self.mix_method == "mixup":
            return self.mix_method
        if self.mixup_prob > 0 and self.numpy_generator.random() < self.mixup_prob:
            return "mixup"
        return self.mix_method

    def draw(self, image_size: tuple[int, int], grid_size: tuple[int, int] | None, mixing: bool = True) -> MixDraw:
        """The draw of one batch of images of ``image_size`` pixels on a ``grid_size`` token grid.

        ``mixing=False`` (after ``mix_off_epoch``) gives an unmixed batch without drawing anything.
        """
        method = self.choose_method(mixing)
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
        check_token_grid(grid_size)
        low, high = self.region_scale
        if self.region_sampling == "official":
            sizes = region_size_range(grid_size, self.region_scale)
            return sizes[0] if len(sizes) == 1 else sizes[int(self.numpy_generator.integers(len(sizes)))]
        side_ratio = low if low == high else float(self.numpy_generator.uniform(low, high))
        return _clamp_window(*(math.floor(side_ratio * side) for side in grid_size), grid_size)

    def _cutmix_box(self, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """A box of area ``(1-λ)·H·W`` centred uniformly at random, clipped to the image; with
        ``cutmix_minmax``, a box of uniformly drawn side shares placed fully inside the image."""
        height, width = image_size
        if self.cutmix_minmax is not None:
            low, high = self.cutmix_minmax
            cut_h = int(
                self.numpy_generator.integers(int(height * low), max(int(height * high), int(height * low) + 1))
            )
            cut_w = int(self.numpy_generator.integers(int(width * low), max(int(width * high), int(width * low) + 1)))
            top = int(self.numpy_generator.integers(0, height - cut_h + 1))
            left = int(self.numpy_generator.integers(0, width - cut_w + 1))
            return top, top + cut_h, left, left + cut_w
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
