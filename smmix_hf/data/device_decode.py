"""Decode a batch of JPEGs on the device and crop, resize, flip and RandAugment it there, from the workers' draws.

Rows of :class:`~smmix_hf.data.device_draws.DeviceDecodeTransform` carry the encoded JPEG and each sample's
draws; :func:`collate_device_batch` stacks them (the bytes padded into one CPU tensor), and
:func:`decode_on_device` decodes the list with ``torchvision.io.decode_jpeg(device=...)`` (nvJPEG on a GPU,
libjpeg-turbo on the CPU), crops each image to its box, resizes it with the recipe's antialiased filter
(``torch.nn.functional.interpolate``), flips it and applies its RandAugment operations
(:mod:`~smmix_hf.data.device_augment`). The result is the uint8 batch of the CPU path, for
:func:`~smmix_hf.data.device_batch.finish_pixels` to normalise and erase. In a loop of your own::

    for batch in loader:  # DataLoader(..., collate_fn=collate_device_batch)
        batch = decode_on_device(batch, device)  # keeps the JPEG bytes on the CPU, moves the rest
        result = task(finish_pixels(batch), batch["labels"])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from smmix_hf.data.device_augment import apply_rand_augment
from smmix_hf.data.transforms import collate_image_batch

__all__ = ["ENCODED_KEYS", "collate_device_batch", "decode_on_device"]

ENCODED_KEYS = ("jpeg_data", "jpeg_lengths")  # stay on the CPU: decode_jpeg reads its input from host memory
_DRAW_KEYS = ("crop_box", "flips", "augment", "augment_fill", "resize_bicubic")


def collate_device_batch(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """:func:`~smmix_hf.data.transforms.collate_image_batch` plus the encoded JPEGs and the draws."""
    batch = collate_image_batch(examples)
    kept = [example for example in examples if example["pixel_values"] is not None]
    if "jpeg" not in kept[0]:  # not a device-decode row (evaluation)
        return batch
    lengths = torch.tensor([len(example["jpeg"]) for example in kept], dtype=torch.int64)
    data = torch.zeros((len(kept), int(lengths.max())), dtype=torch.uint8)
    for row, example in enumerate(kept):
        data[row, : len(example["jpeg"])] = example["jpeg"]
    batch["jpeg_data"], batch["jpeg_lengths"] = data, lengths
    for key in _DRAW_KEYS:
        batch[key] = torch.stack([torch.as_tensor(example[key]) for example in kept])
    return batch


def _resize(crop: torch.Tensor, side: int, bicubic: bool) -> torch.Tensor:
    """The antialiased resize of the CPU path (``Uint8TrainTransform``), in float32 and rounded back to uint8."""
    mode = "bicubic" if bicubic else "bilinear"
    resized = F.interpolate(crop[None].float(), size=(side, side), mode=mode, antialias=True)[0]
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def decode_on_device(batch: Mapping[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    """The batch on ``device`` with every JPEG row decoded, cropped, resized, flipped and augmented there.

    Rows that came decoded (``jpeg_lengths`` 0: the CPU fallback) are kept; a batch without JPEG rows is only moved.
    """
    device = torch.device(device)
    moved = {key: value.to(device) for key, value in batch.items() if key not in ENCODED_KEYS}
    if "jpeg_lengths" not in batch:
        return moved
    lengths = batch["jpeg_lengths"].tolist()
    rows = [row for row, length in enumerate(lengths) if length > 0]
    if not rows:
        return moved
    data = batch["jpeg_data"].cpu()
    encoded = [data[row, : lengths[row]] for row in rows]
    images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    pixels = moved["pixel_values"].clone()
    side = pixels.shape[-1]
    boxes, flips = batch["crop_box"].tolist(), batch["flips"].tolist()
    augment, fills, bicubic = batch["augment"].tolist(), batch["augment_fill"], batch["resize_bicubic"].tolist()
    for row, image in zip(rows, images, strict=True):
        top, left, height, width = boxes[row]
        image = _resize(image[:, top : top + height, left : left + width], side, bicubic[row])
        if flips[row][0]:
            image = image.flip(-1)
        if flips[row][1]:
            image = image.flip(-2)
        pixels[row] = apply_rand_augment(image, augment[row], fills[row])
    moved["pixel_values"] = pixels
    return moved
