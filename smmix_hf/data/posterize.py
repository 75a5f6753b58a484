"""timm's RandAugment with Pillow 13: posterize to 0 bits gives a black image again, as with Pillow <= 12.

The DeiT policy ``rand-m9-mstd0.5-inc1`` draws magnitudes around 9 and clips them at 10, where
``PosterizeIncreasing`` keeps ``4 - int(10 / 10 * 4) = 0`` bits. Pillow up to 12 turned that into a black
image; Pillow 13 raises ``ValueError: bits must be between or equal to 1 and 8``, which stops training
after a few hundred images. :func:`keep_zero_bit_posterize` gives the posterize operations of one built
transform Pillow 12's behaviour; timm itself is not changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PIL import Image, ImageOps
from timm.data import auto_augment

__all__ = ["keep_zero_bit_posterize", "pillow_rejects_zero_bits"]


def pillow_rejects_zero_bits() -> bool:
    """Whether this Pillow refuses ``ImageOps.posterize(image, 0)``."""
    try:
        ImageOps.posterize(Image.new("RGB", (1, 1)), 0)
    except ValueError:
        return True
    return False


def _posterize(image: Image.Image, bits_to_keep: int, **kwargs: Any) -> Image.Image:
    """timm's posterize, with 0 bits giving the black image that Pillow <= 12 returned."""
    if bits_to_keep <= 0:
        return Image.new(image.mode, image.size)
    return auto_augment.posterize(image, bits_to_keep, **kwargs)


def _augment_ops(transform: Any) -> Iterator[auto_augment.AugmentOp]:
    """Every timm ``AugmentOp`` inside a composed transform."""
    if isinstance(transform, auto_augment.AugmentOp):
        yield transform
        return
    for attribute in ("transforms", "ops", "policy"):
        for child in getattr(transform, attribute, None) or ():
            if isinstance(child, (list, tuple)):
                for grandchild in child:
                    yield from _augment_ops(grandchild)
            else:
                yield from _augment_ops(child)


def keep_zero_bit_posterize(transform: Any) -> Any:
    """``transform`` with its posterize operations accepting 0 bits (a no-op where Pillow accepts them)."""
    if not pillow_rejects_zero_bits():
        return transform
    for op in _augment_ops(transform):
        if op.aug_fn is auto_augment.posterize:
            op.aug_fn = _posterize
    return transform
