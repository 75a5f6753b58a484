"""Image mixing as pure tensor math: SMMix's max-min windows and the CutMix / Mixup baselines.

Nothing here knows about models. Images are ``[B, C, H, W]``; token grids are ``[B, gh, gw]`` with a
patch of ``H / gh`` by ``W / gw`` pixels per token. Every function pairs sample ``i`` with a source
sample ``source_index[i]`` (by default ``B - 1 - i``, the batch flipped, as timm's Mixup and the
official SMMix code do) and returns a new tensor; inputs are never modified in place.

Equation numbers refer to Chen et al., "SMMix: Self-Motivated Image Mixing for Vision
Transformers", ICCV 2023.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from smmix_hf.tokens import image_attention_score

__all__ = [
    "MixedBatch",
    "SMMixResult",
    "cutmix_images",
    "flip_pairing",
    "image_attention_score",
    "mixup_images",
    "paste_windows",
    "random_window_corners",
    "select_windows",
    "smmix_images",
]


@dataclass(frozen=True)
class SMMixResult:
    """A batch mixed window by window.

    Attributes:
        images: the mixed batch ``[B, C, H, W]`` (a new tensor).
        source_mask: bool ``[B, gh, gw]``, True where the mixed image's token came from the source.
        source_index: LongTensor ``[B]``; sample ``i`` took its window from ``source_index[i]``.
        source_fraction: the paper's λ, ``h·w / (gh·gw)``: the share of tokens from the source (Eq. 9).
        source_corner: LongTensor ``[B, 2]``, (row, col) in tokens of the window read in the source.
        target_corner: LongTensor ``[B, 2]``, (row, col) in tokens of the window replaced in the target.
        region_size: ``(h, w)`` in tokens.
    """

    images: torch.Tensor
    source_mask: torch.Tensor
    source_index: torch.Tensor
    source_fraction: float
    source_corner: torch.Tensor
    target_corner: torch.Tensor
    region_size: tuple[int, int]


@dataclass(frozen=True)
class MixedBatch:
    """A batch mixed by a whole-image method (CutMix or Mixup).

    ``source_fraction`` is the weight of the source label in the mixed label: the pasted area share
    for CutMix (after clipping the box to the image), the blend weight for Mixup.
    """

    images: torch.Tensor
    source_index: torch.Tensor
    source_fraction: float


def flip_pairing(batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Source index of every sample when the batch is paired with its reverse: ``i -> B - 1 - i``."""
    return torch.arange(batch_size - 1, -1, -1, device=device)


def _window_sums(scores: torch.Tensor, region_size: tuple[int, int]) -> torch.Tensor:
    """Sum of ``scores`` over every ``h × w`` window fully inside the grid: ``[B, gh-h+1, gw-w+1]``."""
    h, w = region_size
    return scores.unfold(1, h, 1).unfold(2, w, 1).sum(dim=(-1, -2))


def select_windows(scores: torch.Tensor, region_size: tuple[int, int], largest: bool) -> torch.Tensor:
    """Top-left corner (row, col) of the window with the largest (or smallest) score sum (Eq. 7-8).

    Only windows fully inside the grid are candidates. Ties go to the first window in row-major order
    of its top-left corner. Returns a LongTensor ``[B, 2]``.
    """
    sums = _window_sums(scores, region_size)
    positions_per_row = sums.shape[-1]
    flat = sums.flatten(1)
    best = flat.argmax(dim=1) if largest else flat.argmin(dim=1)
    return torch.stack((best // positions_per_row, best % positions_per_row), dim=1)


def random_window_corners(
    batch_size: int,
    grid_size: tuple[int, int],
    region_size: tuple[int, int],
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniformly random top-left corners ``[B, 2]`` of windows fully inside the grid (Tab. 7 ablation)."""
    (gh, gw), (h, w) = grid_size, region_size
    rows = torch.randint(0, gh - h + 1, (batch_size,), generator=generator)
    cols = torch.randint(0, gw - w + 1, (batch_size,), generator=generator)
    return torch.stack((rows, cols), dim=1).to(device)


def _check_region(grid_size: tuple[int, int], region_size: tuple[int, int]) -> None:
    (gh, gw), (h, w) = grid_size, region_size
    if not (1 <= h <= gh and 1 <= w <= gw):
        raise ValueError(f"region_size {region_size} must fit the token grid {grid_size} and be at least 1x1.")


def paste_windows(
    images: torch.Tensor,
    grid_size: tuple[int, int],
    region_size: tuple[int, int],
    source_index: torch.Tensor,
    source_corner: torch.Tensor,
    target_corner: torch.Tensor,
) -> SMMixResult:
    """Copy a window of each source image, patch for patch, onto a window of its target (Eq. 7-8).

    Sample ``i`` is the target; its window at ``target_corner[i]`` is replaced by the pixels of image
    ``source_index[i]`` at ``source_corner[i]``. Corners are in tokens. Runs without a Python loop over
    the batch and without host synchronisation.
    """
    batch, channels, height, width = images.shape
    (gh, gw), (h, w) = grid_size, region_size
    _check_region(grid_size, region_size)
    if height % gh or width % gw:
        raise ValueError(f"image size {height}x{width} is not a whole number of patches of the grid {gh}x{gw}.")
    patch_h, patch_w = height // gh, width // gw
    device = images.device
    source_index = source_index.to(device)
    source_corner, target_corner = source_corner.to(device), target_corner.to(device)

    window_rows = torch.arange(h * patch_h, device=device)
    window_cols = torch.arange(w * patch_w, device=device)
    source_rows = (source_corner[:, 0:1] * patch_h + window_rows)[:, None, :, None]
    source_cols = (source_corner[:, 1:2] * patch_w + window_cols)[:, None, None, :]
    target_rows = (target_corner[:, 0:1] * patch_h + window_rows)[:, None, :, None]
    target_cols = (target_corner[:, 1:2] * patch_w + window_cols)[:, None, None, :]
    channel = torch.arange(channels, device=device)[None, :, None, None]
    batch_of_target = torch.arange(batch, device=device)[:, None, None, None]

    patches = images[source_index[:, None, None, None], channel, source_rows, source_cols]
    mixed = images.clone()
    mixed[batch_of_target, channel, target_rows, target_cols] = patches

    token_rows = torch.arange(gh, device=device)[None, :, None]
    token_cols = torch.arange(gw, device=device)[None, None, :]
    top, left = target_corner[:, 0, None, None], target_corner[:, 1, None, None]
    source_mask = (token_rows >= top) & (token_rows < top + h) & (token_cols >= left) & (token_cols < left + w)
    return SMMixResult(
        images=mixed,
        source_mask=source_mask,
        source_index=source_index,
        source_fraction=(h * w) / (gh * gw),
        source_corner=source_corner,
        target_corner=target_corner,
        region_size=(h, w),
    )


def smmix_images(
    images: torch.Tensor,
    scores: torch.Tensor,
    region_size: tuple[int, int],
    source_index: torch.Tensor | None = None,
) -> SMMixResult:
    """Max-min region mixing (Eq. 7-8).

    The source window is the ``h × w`` window with the largest sum of the *source* image's attention
    score; the target window is the one with the smallest sum of the *target* image's score. The
    source window's pixels replace the target window's.

    Args:
        images: ``[B, C, H, W]``; not modified.
        scores: ``[B, gh, gw]`` image attention scores (Eq. 6) on the token grid.
        region_size: ``(h, w)`` in tokens.
        source_index: LongTensor ``[B]``; default pairs ``i`` with ``B - 1 - i``.
    """
    if scores.dim() != 3 or scores.shape[0] != images.shape[0]:
        raise ValueError(f"scores must be [B, gh, gw] with B={images.shape[0]}; got shape {tuple(scores.shape)}.")
    grid_size = (scores.shape[1], scores.shape[2])
    _check_region(grid_size, region_size)
    if source_index is None:
        source_index = flip_pairing(images.shape[0], device=scores.device)
    source_index = source_index.to(scores.device)
    source_corner = select_windows(scores[source_index], region_size, largest=True)
    target_corner = select_windows(scores, region_size, largest=False)
    return paste_windows(images, grid_size, region_size, source_index, source_corner, target_corner)


def cutmix_images(
    images: torch.Tensor,
    box: tuple[int, int, int, int],
    source_index: torch.Tensor | None = None,
) -> MixedBatch:
    """CutMix: the pixel box ``(top, bottom, left, right)`` of the source replaces the target's.

    ``source_fraction`` is the box's share of the image, i.e. the area-corrected λ of the source.
    """
    top, bottom, left, right = box
    height, width = images.shape[-2:]
    if not (0 <= top <= bottom <= height and 0 <= left <= right <= width):
        raise ValueError(f"CutMix box {box} is not inside the {height}x{width} image.")
    if source_index is None:
        source_index = flip_pairing(images.shape[0], device=images.device)
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images[source_index, :, top:bottom, left:right]
    return MixedBatch(mixed, source_index, (bottom - top) * (right - left) / (height * width))


def mixup_images(images: torch.Tensor, source_fraction: float, source_index: torch.Tensor | None = None) -> MixedBatch:
    """Mixup: ``(1 - λ)·target + λ·source`` pixel by pixel, λ = ``source_fraction``."""
    if source_index is None:
        source_index = flip_pairing(images.shape[0], device=images.device)
    mixed = torch.lerp(images, images[source_index], source_fraction)
    return MixedBatch(mixed, source_index, source_fraction)
