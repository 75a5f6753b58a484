"""The data worker's part of decoding on the device: read the JPEG's bytes and header, make the sample's draws.

:class:`DeviceDecodeTransform` makes every draw of :class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform`
from the sample's seed, in the same order and from the same generators (crop box on the header's size, flips,
RandAugment's operations and magnitudes, erase boxes), but decodes nothing: it hands over the encoded bytes and
the draws, and :func:`~smmix_hf.data.device_decode.decode_on_device` decodes, crops, resizes, flips and augments
the batch on the device. So the augmentation does not depend on where the decoding happens, and an exact resume
repeats it. An image that ``torchvision.io.decode_jpeg`` should not get (PNG, grayscale or CMYK JPEG, an image
stored decoded) goes the CPU path of ``Uint8TrainTransform`` instead, and its row arrives decoded.
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from timm.data import auto_augment

from smmix_hf.data.crop_decode import _is_plain_jpeg
from smmix_hf.data.device_augment import draw_rand_augment, unsupported_ops
from smmix_hf.data.transforms import TransformSettings
from smmix_hf.data.uint8_transform import _CHOICE_SALT, _TORCH_MODES, Uint8TrainTransform, crop_box, erase_boxes

__all__ = ["DeviceDecodeTransform", "device_decode_problem"]


def _encoded(value: Any) -> bytes | None:
    """The stored file's bytes (a ``{"bytes", "path"}`` record, a path or bytes); None for a decoded image."""
    if isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
        return data if data is not None else (Path(path).read_bytes() if path else None)
    if isinstance(value, str):
        return Path(value).read_bytes()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return None


def device_decode_problem(settings: TransformSettings) -> str | None:
    """Why the training transform of ``settings`` cannot run on the device, in one sentence; None if it can."""
    if settings.interpolation not in _TORCH_MODES:
        return f"--decode_on_device resizes bilinear or bicubic, not {settings.interpolation!r}"
    for step in DeviceDecodeTransform.policy_of(settings):
        if not isinstance(step, auto_augment.RandAugment):
            return (
                f"--decode_on_device applies RandAugment on the device, not {type(step).__name__} "
                "(pass --auto_augment rand-..., or --auto_augment none --color_jitter 0)"
            )
        if unsupported := unsupported_ops(step):
            return f"--decode_on_device has no device version of RandAugment's {', '.join(unsupported)}"
    return None


class DeviceDecodeTransform(Uint8TrainTransform):
    """Stored image + sample seed → encoded JPEG and the sample's draws; see the module docstring.

    Returns the row of ``Uint8TrainTransform`` (``pixel_values`` all zero until the device fills them) with
    ``jpeg`` (uint8 bytes, empty when the row came decoded), ``crop_box`` (top, left, height, width in the full
    image), ``flips`` (horizontal, vertical), ``augment`` (``[layers, 2]``: device operation id or -1, argument),
    ``augment_fill`` (the geometric operations' RGB fill) and ``resize_bicubic``.
    """

    def __init__(self, settings: TransformSettings) -> None:
        super().__init__(settings, resize="torch")
        if problem := device_decode_problem(settings):
            raise ValueError(problem + ".")
        self.layers = sum(step.num_layers for step in self.policy)
        fill = self.policy[0].ops[0].kwargs["fillcolor"] if self.policy else (0, 0, 0)
        self.fill = torch.tensor(fill, dtype=torch.float32)

    @staticmethod
    def policy_of(settings: TransformSettings) -> list[Any]:
        return Uint8TrainTransform(settings).policy

    def _extras(self, data: bytes, box: tuple[int, ...], flips: list[bool], drawn: list[tuple[int, float]]) -> dict:
        augment = torch.tensor(drawn or [(-1, 0.0)] * self.layers, dtype=torch.float64).reshape(self.layers, 2)
        return {
            "jpeg": torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8),
            "crop_box": torch.tensor(box, dtype=torch.int64),
            "flips": torch.tensor(flips + [False] * (2 - len(flips)), dtype=torch.bool),
            "augment": augment,
            "augment_fill": self.fill,
            "resize_bicubic": self.settings.interpolation == "bicubic",
        }

    def __call__(self, value: Any, seed: int) -> dict[str, Any]:
        data = _encoded(value)
        image = Image.open(io.BytesIO(data)) if data is not None else None
        if image is None or not _is_plain_jpeg(image):  # the CPU path decodes it
            return {**super().__call__(value, seed), **self._extras(b"", (0, 0, 0, 0), [], [])}
        rng = random.Random(seed)
        width, height = image.size
        box = crop_box(rng, width, height, self.scale, self.ratio)
        torch_generator = torch.Generator()
        torch_generator.manual_seed(seed)
        flips = {Image.Transpose.FLIP_LEFT_RIGHT: False, Image.Transpose.FLIP_TOP_BOTTOM: False}
        for probability, flip in self.flips:
            flips[flip] = torch.rand(1, generator=torch_generator).item() < probability
        drawn = []
        for step in self.policy:
            drawn += draw_rand_augment(step, random.Random(seed ^ _CHOICE_SALT), rng)
        boxes = np.zeros((self.count, 4), dtype=np.int32)
        if self.erasing is not None:
            for row, erase in enumerate(erase_boxes(rng, self.erasing, self.side)):
                boxes[row] = erase
        return {
            "pixel_values": torch.zeros((3, self.side, self.side), dtype=torch.uint8),
            "erase_boxes": torch.from_numpy(boxes),
            "erase_seed": seed,
            "erase_mode": self.erase_mode,
            "pixel_mean": self.settings.mean,
            "pixel_std": self.settings.std,
            **self._extras(data, box, list(flips.values()), drawn),
        }
