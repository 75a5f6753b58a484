"""Normalise a uint8 batch and paint its random erasing on the device: one call, in any training loop.

Data workers that run :class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform` hand over uint8 images with
what the device needs to finish them (as timm's ``PrefetchLoader`` does): each sample's mean and std, erase
boxes, erase mode and noise seed. :func:`finish_pixels` gives the float batch the model takes, equal to the
CPU path's (``ToTensor``, ``Normalize``, timm's ``RandomErasing`` under ``torch.manual_seed(seed)``) to fp32
rounding on the CPU, and of the same distribution on a GPU, whose generator differs. A float batch (evaluation,
or any other data) passes through unchanged::

    for batch in loader:
        batch = {key: value.to(device) for key, value in batch.items()}
        result = task(finish_pixels(batch), batch["labels"])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from smmix_hf.data.uint8_transform import ERASE_MODES

__all__ = ["DEVICE_BATCH_KEYS", "finish_pixels"]

DEVICE_BATCH_KEYS = ("erase_boxes", "erase_seed", "erase_mode", "pixel_mean", "pixel_std")


def _paint(pixels: torch.Tensor, boxes: list[list[int]], seed: int, mode: int) -> None:
    """timm's ``RandomErasing`` fill for one normalised image, its noise drawn from a generator seeded ``seed``."""
    generator = torch.Generator(device=pixels.device)
    generator.manual_seed(seed)
    channels = pixels.shape[0]
    for top, left, height, width in boxes:
        if height == 0:
            break
        if mode == ERASE_MODES["pixel"]:
            fill = torch.empty((channels, height, width), device=pixels.device).normal_(generator=generator)
        elif mode == ERASE_MODES["rand"]:
            fill = torch.empty((channels, 1, 1), device=pixels.device).normal_(generator=generator)
        else:
            fill = torch.zeros((channels, 1, 1), device=pixels.device)
        pixels[:, top : top + height, left : left + width] = fill


def finish_pixels(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The model's float ``pixel_values`` for a collated batch: normalised and erased if it came as uint8."""
    pixels = batch["pixel_values"]
    if pixels.dtype != torch.uint8:
        return pixels
    # (x - 255 mean) / (255 std), as timm's PrefetchLoader: one pass fewer than x / 255 - mean, / std, and the same
    # to fp32 rounding.
    mean = batch["pixel_mean"].to(pixels.device, torch.float32)[:, :, None, None].mul(255)
    std = batch["pixel_std"].to(pixels.device, torch.float32)[:, :, None, None].mul(255)
    images = pixels.float().sub_(mean).div_(std)
    boxes = batch["erase_boxes"]
    erased = (boxes[:, :, 2] > 0).any(dim=1).nonzero().flatten().tolist()
    if erased:
        boxes_cpu, seeds, modes = boxes.tolist(), batch["erase_seed"].tolist(), batch["erase_mode"].tolist()
        for index in erased:
            _paint(images[index], boxes_cpu[index], seeds[index], modes[index])
    return images
