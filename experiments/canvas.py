"""The bundled digits placed at random positions and scales on a larger noisy canvas, with their boxes.

In the 32 px digits every image is filled by its digit, so any window holds some of the object. On
ImageNet objects are local: a random window often holds background. This variant restores that: each
8×8 digit is scaled to a side drawn uniformly from ``scale`` × the canvas side, pasted at a uniformly
random position of a ``canvas_size`` canvas of uniform noise (``noise`` × 255 at most), and combined
by a per-pixel maximum. Positions, scales and noise are fixed by ``seed``; the train / validation
split is that of :func:`smmix_hf.data.load_digits_dataset`. ``renderings`` places every training digit
that many times (at independent positions and scales); the validation split is rendered once.

Every row records where its digit went: ``box`` is ``[top, left, side]`` in canvas pixels (the pasted
square; the glyph's ink may not reach its edges). :func:`token_box_mask` turns boxes into the token
cells of a ``g × g`` grid that the box touches, which is what the window hit rates of
:mod:`experiments.probe` compare against.
"""

from __future__ import annotations

import datasets
import numpy as np
import torch
from PIL import Image

from smmix_hf.data.digits import load_digits_dataset

__all__ = ["load_canvas_digits", "place_on_canvas", "token_box_mask"]


def place_on_canvas(
    digit: Image.Image, canvas_size: int, rng: np.random.Generator, scale: tuple[float, float], noise: float
) -> tuple[Image.Image, list[int]]:
    """``digit`` resized and pasted at random on a noisy ``canvas_size`` square; the image and ``[top, left, side]``."""
    side = round(rng.uniform(*scale) * canvas_size)
    top, left = (int(value) for value in rng.integers(0, canvas_size - side + 1, size=2))
    canvas = (rng.random((canvas_size, canvas_size)) * noise * 255.0).astype(np.float32)
    glyph = np.asarray(digit.convert("L").resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)
    region = canvas[top : top + side, left : left + side]
    canvas[top : top + side, left : left + side] = np.maximum(region, glyph)
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8)).convert("RGB"), [top, left, side]


def load_canvas_digits(
    canvas_size: int = 40,
    scale: tuple[float, float] = (0.4, 0.75),
    noise: float = 0.25,
    seed: int = 0,
    renderings: int = 1,
) -> datasets.DatasetDict:
    """Train / validation splits of digits on noisy canvases; columns ``image``, ``label`` and ``box``."""
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1; got {scale}.")
    if renderings < 1:
        raise ValueError(f"renderings must be >= 1; got {renderings}.")
    digits = load_digits_dataset(image_size=32, seed=0)
    rng = np.random.default_rng(seed)
    splits = {}
    for name, split in digits.items():
        repeats = renderings if name == "train" else 1
        images, labels, boxes = [], [], []
        for _ in range(repeats):
            for image, label in zip(split["image"], split["label"], strict=True):
                canvas, box = place_on_canvas(image, canvas_size, rng, scale, noise)
                images.append(canvas)
                labels.append(label)
                boxes.append(box)
        features = split.features.copy()
        features["box"] = datasets.Sequence(datasets.Value("int32"), length=3)
        splits[name] = datasets.Dataset.from_dict({"image": images, "label": labels, "box": boxes}, features=features)
    return datasets.DatasetDict(splits)


def token_box_mask(boxes: torch.Tensor, canvas_size: int, grid: int) -> torch.Tensor:
    """Bool ``[B, grid, grid]``: the token cells that the pixel box ``[top, left, side]`` of each row touches."""
    patch = canvas_size / grid
    starts = torch.arange(grid, dtype=torch.float32) * patch
    ends = starts + patch
    top, left, side = (boxes[:, index, None].float() for index in range(3))
    rows = (starts[None] < top + side) & (ends[None] > top)
    cols = (starts[None] < left + side) & (ends[None] > left)
    return rows[:, :, None] & cols[:, None, :]
