"""The random draws behind every mixed batch, from one seeded, checkpointable source.

Each training batch draws, on the host and without touching the accelerator: whether it is mixed at
all (``mix_prob``), which method mixes it (the DeiT switch, :mod:`smmix_hf.methods.switch`), SMMix's
window size (Eq. 7), CutMix's box and Mixup's blend weight. All of them come from one
:class:`MixRandom` (a numpy and a torch generator), whose state goes into every checkpoint so that a
resumed run draws exactly what the uninterrupted run would have. By default all processes of a
distributed run share the seed, so they make the same choice at the same step and their step costs
stay equal (see ``SMMixConfig.per_process_draws``).

The draws follow timm 1.0's ``Mixup`` (batch mode) value for value and in the same order, so the same
random stream gives the same batches: one uniform for ``mix_prob``, one for the switch, then λ ~ Beta(α, α)
and the box's centre row and column (:func:`draw_cutmix_box`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "REGION_SAMPLINGS",
    "MixRandom",
    "check_token_grid",
    "clamp_window",
    "draw_cutmix_box",
    "draw_region_size",
    "region_size_range",
]

REGION_SAMPLINGS = ("official", "continuous")


class MixRandom:
    """The numpy generator (method choice, window sizes, boxes, blend weights) and the torch generator
    (random window corners of the Tab. 7 ablation) of one run; :meth:`state_dict` is checkpointed.

    The state is plain values: NumPy's PCG64 state as a dict of a string and Python ints, torch's as a uint8
    tensor, so a checkpoint holding it loads with ``torch.load(..., weights_only=True)``."""

    def __init__(self, seed: int) -> None:
        self.numpy = np.random.default_rng(seed)
        self.torch = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"numpy": _plain(self.numpy.bit_generator.state), "torch": self.torch.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.numpy.bit_generator.state = state["numpy"]
        self.torch.set_state(state["torch"])


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars as Python numbers, in dicts and lists of its own."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def check_token_grid(grid_size: tuple[int, int]) -> None:
    """Refuse a token grid on which no window leaves the target a token of its own (L_fine would be NaN)."""
    gh, gw = grid_size
    if gh * gw < 2:
        raise ValueError(
            f"SMMix needs at least 2 image tokens, but the model's token grid is {gh}x{gw}; use a larger image "
            "size or a smaller patch size, or another mix_method."
        )


def clamp_window(h: int, w: int, grid_size: tuple[int, int]) -> tuple[int, int]:
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
    ratio. Sizes are clamped as in :func:`clamp_window`.
    """
    gh, gw = grid_size
    low, high = region_scale
    sizes = []
    for h in range(math.floor(low * gh), math.floor(high * gh) + 1):
        w = h if gh == gw else round(h * gw / gh)
        sizes.append(clamp_window(h, w, grid_size))
    return sizes


def draw_region_size(
    rng: np.random.Generator, grid_size: tuple[int, int], region_scale: tuple[float, float], sampling: str
) -> tuple[int, int]:
    """SMMix's window ``(h, w)`` in tokens (Eq. 7).

    ``official`` draws an integer side uniformly from ``⌊low·g⌋ … ⌊high·g⌋`` (the code behind the paper's
    numbers); ``continuous`` draws δ ~ U(low, high) and floors ``δ·g`` (the paper's wording), which gives
    the two end sizes half the weight of the others. Either way the window has at least one token per
    side and leaves the target at least one token, so Tab. 8's U(0, 1) is accepted. ``low == high``
    fixes the size.
    """
    if sampling not in REGION_SAMPLINGS:
        raise ValueError(f"region_sampling must be one of {', '.join(REGION_SAMPLINGS)}; got {sampling!r}.")
    check_token_grid(grid_size)
    low, high = region_scale
    if sampling == "official":
        sizes = region_size_range(grid_size, region_scale)
        return sizes[0] if len(sizes) == 1 else sizes[int(rng.integers(len(sizes)))]
    side_ratio = low if low == high else float(rng.uniform(low, high))
    return clamp_window(*(math.floor(side_ratio * side) for side in grid_size), grid_size)


def draw_cutmix_box(
    rng: np.random.Generator,
    image_size: tuple[int, int],
    alpha: float,
    minmax: tuple[float, float] | None = None,
) -> tuple[int, int, int, int]:
    """CutMix's ``(top, bottom, left, right)`` pixel box, drawn as timm 1.0's ``cutmix_bbox_and_lam`` draws it.

    λ ~ Beta(α, α) is the target's share (timm's ``lam``); the box has sides ``⌊√(1-λ)·H⌋ × ⌊√(1-λ)·W⌋``, so
    its area is ``(1-λ)·H·W`` before clipping. Its centre ``(c_y, c_x)`` is uniform over the pixels and a cut
    of ``n`` pixels spans ``[c - n // 2, c + (n + 1) // 2)``, clipped to the image. With ``minmax``, the side
    shares are uniform in ``[min, max)`` and the box lies fully inside the image (timm's ``cutmix_minmax``);
    timm still draws λ ~ Beta(1, 1) first and ignores it, and so do we, so that the streams stay aligned.
    """
    height, width = image_size
    if minmax is not None:
        rng.beta(1.0, 1.0)
        low, high = minmax
        cut_h = int(rng.integers(int(height * low), max(int(height * high), int(height * low) + 1)))
        cut_w = int(rng.integers(int(width * low), max(int(width * high), int(width * low) + 1)))
        top = int(rng.integers(0, height - cut_h + 1))
        left = int(rng.integers(0, width - cut_w + 1))
        return top, top + cut_h, left, left + cut_w
    target_share = rng.beta(alpha, alpha)
    cut_ratio = math.sqrt(1.0 - target_share)
    cut_h, cut_w = int(height * cut_ratio), int(width * cut_ratio)
    center_y = int(rng.integers(0, height))
    center_x = int(rng.integers(0, width))
    top, bottom = max(center_y - cut_h // 2, 0), min(center_y + (cut_h + 1) // 2, height)
    left, right = max(center_x - cut_w // 2, 0), min(center_x + (cut_w + 1) // 2, width)
    return top, bottom, left, right
