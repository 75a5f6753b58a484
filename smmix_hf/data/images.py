"""Decoding stored images into RGB PIL images, with undecodable files skipped and counted or fatal.

A dataset's image column holds either decoded PIL images, ``{"bytes": ..., "path": ...}`` records (a
``datasets.Image(decode=False)`` column: Arrow tables, parquet, WebDataset shards) or file paths. Any
PIL mode becomes RGB. A file that does not decode is either skipped and counted in a
:class:`SkipCounter` (the training loop logs the count at the end of each epoch) or, in strict mode,
stops the run with the file's name.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = [
    "DECODE_ERRORS",
    "ImageDecodeError",
    "SkipCounter",
    "decode_image",
    "image_source_name",
    "report_undecodable",
    "to_rgb",
]

logger = logging.getLogger("smmix_hf")

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_MAX_WORKER_SLOTS = 1024

DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
)


class ImageDecodeError(ValueError):
    """An image that does not decode, in strict mode."""


def _integer_to_uint8(image: Image.Image) -> np.ndarray:
    """Scale a 16- or 32-bit integer grayscale image to 0..255."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode in _SIXTEEN_BIT_MODES or values.max(initial=0.0) > 255.0:
        values = values / 257.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _float_to_uint8(image: Image.Image) -> np.ndarray:
    """Scale a float grayscale image (0..1 or 0..255) to 0..255."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    if values.max(initial=0.0) <= 1.0:
        values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert an image of any common PIL mode to RGB.

    Transparent images are composited on white; 16- and 32-bit integer images are scaled to 8 bit; float
    images in 0..1 are scaled to 0..255; palette, grayscale, CMYK and YCbCr images are converted directly.
    """
    if not isinstance(image, Image.Image):
        raise ValueError(f"to_rgb expects a PIL.Image.Image, got {type(image).__name__}; decode the image first.")
    if image.mode == "RGB":
        return image
    if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "I" or image.mode in _SIXTEEN_BIT_MODES:
        return Image.fromarray(_integer_to_uint8(image)).convert("RGB")
    if image.mode == "F":
        return Image.fromarray(_float_to_uint8(image)).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as error:
        raise ValueError(f"Cannot convert image mode {image.mode!r} to RGB; convert it before loading.") from error


def image_source_name(value: Any, shard: str | None = None) -> str:
    """A name for the file behind an image value, for messages: its path, and its shard if known."""
    path = value.get("path") if isinstance(value, Mapping) else value if isinstance(value, str) else None
    name = repr(path) if path else "an image without a file name"
    return f"{name} in {shard!r}" if shard else name


def _open(value: Any) -> Image.Image:
    """Open and fully decode one stored image value."""
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:
            image = Image.open(io.BytesIO(data))
        elif path:
            image = Image.open(path)
        else:
            raise ValueError("the image record holds neither bytes nor a path")
    elif isinstance(value, str):
        image = Image.open(value)
    elif isinstance(value, (bytes, bytearray)):
        image = Image.open(io.BytesIO(value))
    else:
        raise TypeError(
            f"the image column holds {type(value).__name__} values; it must hold images, "
            "{'bytes', 'path'} records or file paths: pass --image_column_name with the column that holds the images."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image.load()
    return image


class SkipCounter:
    """Counts images skipped because they do not decode, across DataLoader worker processes.

    Each worker adds to its own slot of a shared-memory tensor, so counts from concurrent workers never
    collide; :meth:`total` sums the slots in the training process.
    """

    def __init__(self, split: str = "train") -> None:
        self.split = split
        self.slots = torch.zeros(_MAX_WORKER_SLOTS, dtype=torch.int64).share_memory_()
        self.reported = 0

    def add(self, count: int = 1) -> None:
        info = torch.utils.data.get_worker_info()
        slot = 0 if info is None else 1 + info.id % (_MAX_WORKER_SLOTS - 1)
        self.slots[slot] += count

    def total(self) -> int:
        return int(self.slots.sum())

    def since_last_report(self) -> int:
        """Images skipped since the previous call."""
        total = self.total()
        new, self.reported = total - self.reported, total
        return new


def decode_image(
    value: Any, *, strict: bool = False, counter: SkipCounter | None = None, shard: str | None = None
) -> Image.Image | None:
    """The RGB image stored in ``value``, or ``None`` (counted and logged) if it does not decode.

    With ``strict`` an undecodable image raises :class:`ImageDecodeError` naming the file instead.
    """
    try:
        return to_rgb(_open(value))
    except DECODE_ERRORS as error:
        report_undecodable(value, error, strict=strict, counter=counter, shard=shard)
        return None


def report_undecodable(
    value: Any, error: BaseException, *, strict: bool, counter: SkipCounter | None, shard: str | None
) -> None:
    """Count and log an image that did not decode, or, with ``strict``, raise :class:`ImageDecodeError`."""
    where = image_source_name(value, shard)
    if strict:
        raise ImageDecodeError(
            f"cannot decode image {where} ({type(error).__name__}: {error}); remove or replace the file, "
            "or drop --strict_images to skip and count such files."
        ) from error
    if counter is not None:
        counter.add()
    logger.warning("skipped image %s: it does not decode (%s: %s)", where, type(error).__name__, error)
