"""The bundled digits placed at random positions and scales on a larger noisy canvas.

In the 32 px digits every image is filled by its digit, so any window holds some of the object. On
ImageNet objects are local: a random window often holds background. This variant restores that: each
8×8 digit is scaled to a side drawn uniformly from ``scale`` × the canvas side, pasted at a uniformly
random position of a ``canvas_size`` canvas of uniform noise (``noise`` × 255 at most), and combined
by a per-pixel maximum. Positions, scales and noise are fixed by ``seed``; the train / validation
split is that of :func:`smmix_hf.data.load_digits_dataset`.
"""

from __future__ import annotations

import datasets
import numpy as np
from PIL import Image

from smmix_hf.data.digits import load_digits_dataset

__all__ = ["load_canvas_digits", "place_on_canvas"]


def place_on_canvas(
    digit: Image.Image, canvas_size: int, rng: np.random.Generator, scale: tuple[float, float], noise: float
) -> Image.Image:
    """``digit`` (grayscale-ish RGB) resized and pasted at random on a noisy ``canvas_size`` square."""
    side = round(rng.uniform(*scale) * canvas_size)
    top, left = (int(value) for value in rng.integers(0, canvas_size - side + 1, size=2))
    canvas = (rng.random((canvas_size, canvas_size)) * noise * 255.0).astype(np.float32)
    glyph = np.asarray(digit.convert("L").resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)
    region = canvas[top : top + side, left : left + side]
    canvas[top : top + side, left : left + side] = np.maximum(region, glyph)
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8)).convert("RGB")


def load_canvas_digits(
    canvas_size: int = 40, scale: tuple[float, float] = (0.4, 0.75), noise: float = 0.25, seed: int = 0
) -> datasets.DatasetDict:
    """Train / validation splits of digits on noisy canvases; columns ``image`` and ``label``."""
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1; got {scale}.")
    digits = load_digits_dataset(image_size=32, seed=0)
    rng = np.random.default_rng(seed)
    splits = {}
    for name, split in digits.items():
        images = [place_on_canvas(image, canvas_size, rng, scale, noise) for image in split["image"]]
        splits[name] = datasets.Dataset.from_dict({"image": images, "label": split["label"]}, features=split.features)
    return datasets.DatasetDict(splits)
