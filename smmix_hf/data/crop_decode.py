"""Decode only what a random resized crop needs: the box alone, DCT scaling, the rows down to the crop's bottom edge.

The crop box is drawn on the size the JPEG header gives, before anything is decoded (:func:`region_size` and
:func:`open_image` read only the header). Then:

- **The box alone** (:func:`decode_box`), where the package's libjpeg-turbo extension was built (``setup.py``;
  :func:`region_decoder_available`). libjpeg-turbo skips the inverse DCT, upsampling and colour conversion of the
  rows above the box and of the columns beside it, and stops after the box's last row. The pixels equal a full
  decode's bit for bit (a DCT-scaled one's where the scaling below applies). Only the entropy decoding of the
  rows above the box is left, which a baseline JPEG cannot skip.
- **DCT scaling.** Where the box is at least twice the output side in both directions, libjpeg decodes the
  image at 1/2, 1/4 or 1/8 scale (``Image.draft``): the largest power of two ``s`` with ``box / s >= output``,
  so the resize that follows still shrinks, and the box is mapped onto the smaller image. The pixels change
  slightly (the DCT's own down-scaling replaces part of the bicubic one); ``docs/data.md`` gives the PSNR.
- **Rows below the crop are never decoded.** libjpeg decodes top to bottom; :func:`decode_rows` stops after
  the last row the box touches. Those rows equal a full decode's, bit for bit.

Without the extension, :func:`decode_for_crop` does the other two with Pillow, to the same pixels. Everything else
(PNG, grayscale or CMYK JPEGs, images already decoded) is decoded whole, as before.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

try:
    from smmix_hf.data import _jpeg_region
except ImportError:  # built without a C compiler or libjpeg's headers (setup.py): Pillow decodes everything
    _jpeg_region = None

__all__ = [
    "Box",
    "dct_scale",
    "decode_box",
    "decode_for_crop",
    "decode_region",
    "decode_rows",
    "open_image",
    "region_decoder_available",
    "region_size",
    "stored_bytes",
]

Box = tuple[float, float, float, float]  # left, top, right, bottom, in the decoded image's pixels
_DCT_SCALES = (8, 4, 2)


def open_image(value: Any) -> Image.Image:
    """``value`` (a PIL image, a ``{"bytes", "path"}`` record, a path or bytes) opened: header read, pixels not."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:
            return Image.open(io.BytesIO(data))
        if path:
            return Image.open(path)
        raise ValueError("the image record holds neither bytes nor a path")
    if isinstance(value, str):
        return Image.open(value)
    if isinstance(value, (bytes, bytearray)):
        return Image.open(io.BytesIO(value))
    raise TypeError(
        f"the image column holds {type(value).__name__} values; it must hold images, "
        "{'bytes', 'path'} records or file paths: pass --image_column_name with the column that holds the images."
    )


def stored_bytes(value: Any) -> bytes | None:
    """The stored file's bytes of a ``{"bytes", "path"}`` record, a path or bytes; None for anything else."""
    if isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:
            return bytes(data)
        value = path
    if isinstance(value, str) and value:
        with open(value, "rb") as file:
            return file.read()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return None


def region_decoder_available() -> bool:
    """Whether the libjpeg-turbo region decoder was built with the package (``setup.py``)."""
    return _jpeg_region is not None


def region_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG that :func:`decode_region` decodes; None for anything else (PNG,
    grayscale or CMYK JPEGs, a file libjpeg rejects, a size Pillow refuses as a decompression bomb) or without the
    extension."""
    if _jpeg_region is None or data[:2] != b"\xff\xd8":
        return None
    try:
        width, height = _jpeg_region.region_size(data)
    except ValueError:
        return None
    if Image.MAX_IMAGE_PIXELS is not None and width * height > 2 * Image.MAX_IMAGE_PIXELS:
        return None  # Pillow refuses it as a decompression bomb, as it did before
    return width, height


def decode_region(data: bytes, box: tuple[int, int, int, int], scale: int = 1) -> np.ndarray | None:
    """The pixels of ``box`` (top, left, height, width) of a JPEG decoded at ``1 / scale`` (1, 2, 4 or 8, in that
    image's pixels) as uint8 ``[height, width, 3]`` RGB, equal to Pillow's full decode (``Image.draft`` for a scale)
    bit for bit; None where libjpeg reports anything (a truncated or corrupt file), so that the caller decodes with
    Pillow and such a file fails, or is repaired, exactly as before."""
    if _jpeg_region is None:
        return None
    top, left, height, width = box
    try:
        pixels = _jpeg_region.decode_region(data, left, top, width, height, scale)
    except ValueError:
        return None
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)


def decode_box(data: bytes, size: tuple[int, int], box: tuple[int, int, int, int], output_side: int):
    """What ``box`` (top, left, height, width in the header's ``size``) needs of a JPEG, through libjpeg-turbo:
    ``(pixels, None)`` with the box's uint8 ``[h, w, 3]`` pixels, or where :func:`dct_scale` applies ``(pixels,
    region)`` with the whole-pixel cover of the box in the scaled image and the box in those pixels as (left, top,
    right, bottom), ready for ``Image.resize(..., box=...)``. None where libjpeg reports anything."""
    scale = dct_scale(box[3], box[2], output_side)
    if scale == 1:
        pixels = decode_region(data, box)
        return None if pixels is None else (pixels, None)
    top, left, height, width = box
    scaled = (left / scale, top / scale, (left + width) / scale, (top + height) / scale)
    limit = (-(-size[0] // scale), -(-size[1] // scale))
    cover_left, cover_top = math.floor(scaled[0]), math.floor(scaled[1])
    cover_right, cover_bottom = min(limit[0], math.ceil(scaled[2])), min(limit[1], math.ceil(scaled[3]))
    cover = (cover_top, cover_left, cover_bottom - cover_top, cover_right - cover_left)
    pixels = decode_region(data, cover, scale)
    if pixels is None:
        return None
    region = (scaled[0] - cover_left, scaled[1] - cover_top, scaled[2] - cover_left, scaled[3] - cover_top)
    return pixels, region


def dct_scale(box_width: int, box_height: int, output_side: int) -> int:
    """The DCT down-scaling (1, 2, 4 or 8) for a box: the largest with ``box / scale >= output_side`` both ways."""
    for scale in _DCT_SCALES:
        if box_width >= scale * output_side and box_height >= scale * output_side:
            return scale
    return 1


def _is_plain_jpeg(image: Image.Image) -> bool:
    """A baseline or progressive YCbCr JPEG that libjpeg decodes straight to RGB, not yet decoded."""
    return image.format == "JPEG" and image.mode == "RGB" and len(image.tile) == 1 and image.tile[0][0] == "jpeg"


def decode_rows(image: Image.Image, bottom: int) -> Image.Image:
    """Decode rows ``0 .. bottom - 1`` of an opened, not yet decoded, JPEG into a ``width x bottom`` RGB image.

    Pillow's own ``load()`` always decodes every row; this feeds the stream to Pillow's JPEG decoder with the
    tile cut at ``bottom``. The decoder then stops reading scanlines there and reports the unread rest as an
    error when it finishes, which is expected here. Returns the image fully decoded, as ``load()`` would,
    when anything about this Pillow's decoder differs.
    """
    width, height = image.size
    if bottom >= height:
        image.load()
        return image
    offset, args, config = image.tile[0].offset, image.tile[0].args, image.decoderconfig
    image.fp.seek(0)
    data = image.fp.read()
    image.close()
    target = Image.new("RGB", (width, bottom))
    try:
        decoder = Image._getdecoder("RGB", "jpeg", args, config)
        decoder.setimage(target.im, (0, 0, width, bottom))
        decoder.decode(data[offset:])
        decoder.cleanup()
    except (AttributeError, TypeError, ValueError):  # Pillow's decoder interface moved: decode the whole image
        whole = Image.open(io.BytesIO(data))
        whole.load()
        return whole.crop((0, 0, width, bottom))
    return target


def decode_for_crop(image: Image.Image, box: tuple[int, int, int, int], output_side: int) -> tuple[Image.Image, Box]:
    """Decode what ``box`` (top, left, height, width in the header's pixels) needs of an opened image.

    Returns the decoded (possibly DCT-scaled, possibly cut at the box's bottom) RGB image and the box in its
    pixels as (left, top, right, bottom), ready for ``Image.resize(..., box=...)``. An image that is not a plain
    JPEG is decoded whole and the box is returned unchanged.
    """
    top, left, height, width = box
    if not _is_plain_jpeg(image):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
        return image, (left, top, left + width, top + height)
    scale = dct_scale(width, height, output_side)
    if scale > 1:
        full_width, full_height = image.size
        image.draft("RGB", (full_width // scale, full_height // scale))
        if image.size != (-(-full_width // scale), -(-full_height // scale)):  # Pillow chose another scale
            scale = round(full_width / image.size[0])
        scaled = (left / scale, top / scale, (left + width) / scale, (top + height) / scale)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
        return image, scaled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        decoded = decode_rows(image, min(image.size[1], math.ceil(top + height)))
    return decoded, (left, top, left + width, top + height)
