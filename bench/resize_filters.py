"""The random resized crop's resize alone: Pillow's bicubic against torch's antialiased uint8 bicubic, in one thread.

Draws DeiT crop boxes (area 8-100%, aspect 3/4-4/3) of a 500×375 image and resizes each box to 224 px with the
recipe's bicubic filter, the way :class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform` does:

- ``Pillow``: ``Image.resize`` of the crop (timm's path; under pillow-simd, its AVX2 code);
- ``torch``: ``F.interpolate(..., antialias=True)`` on the box's ``[H, W, 3]`` pixels viewed channels-last, and the
  result back to Pillow plane by plane (what the transform hands to RandAugment).

It prints ms per crop (best of the rounds) and which PIL ran. pillow-simd replaces Pillow, so compare it by running
this script in an environment where it is installed (``pip uninstall -y pillow && CC="cc -mavx2" pip install
pillow-simd``); without torch there, only the Pillow row is printed::

    python bench/resize_filters.py
"""

from __future__ import annotations

import argparse
import math
import random
import time

import numpy as np
import PIL
from PIL import Image


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=224)
    return parser.parse_args(argv)


def deit_crops(count: int, size: tuple[int, int] = (500, 375)) -> list[np.ndarray]:
    """``count`` crops of a smooth 500×375 image, boxes drawn as timm's ``RandomResizedCropAndInterpolation``."""
    width, height = size
    rng, draw = np.random.default_rng(0), random.Random(0)
    image = np.asarray(
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    )
    crops = []
    for _ in range(count):
        area = draw.uniform(0.08, 1.0) * width * height
        aspect = math.exp(draw.uniform(math.log(3 / 4), math.log(4 / 3)))
        box_width = min(width, round(math.sqrt(area * aspect)))
        box_height = min(height, round(math.sqrt(area / aspect)))
        left, top = draw.randint(0, width - box_width), draw.randint(0, height - box_height)
        crops.append(np.ascontiguousarray(image[top : top + box_height, left : left + box_width]))
    return crops


def best_ms(resize, crops: list, rounds: int) -> float:
    best = math.inf
    for _ in range(rounds + 1):  # the first round warms up
        start = time.perf_counter()
        for crop in crops:
            resize(crop)
        best = min(best, (time.perf_counter() - start) / len(crops))
    return 1e3 * best


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    side = args.image_size
    arrays = deit_crops(args.crops)
    pillow_crops = [Image.fromarray(crop) for crop in arrays]
    try:
        from importlib.metadata import PackageNotFoundError, version

        simd = version("pillow-simd") == PIL.__version__
    except PackageNotFoundError:
        simd = False
    name = f"{'pillow-simd' if simd else 'Pillow'} {PIL.__version__}"
    pillow_resize = lambda crop: crop.resize((side, side), Image.Resampling.BICUBIC)  # noqa: E731
    results = {name: best_ms(pillow_resize, pillow_crops, args.rounds)}
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)

        def torch_resize(crop: np.ndarray) -> Image.Image:
            pixels = torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0)
            resized = F.interpolate(pixels, size=(side, side), mode="bicubic", antialias=True)
            return Image.merge("RGB", [Image.fromarray(plane) for plane in resized[0].numpy()])

        results[f"torch {torch.__version__} uint8"] = best_ms(torch_resize, arrays, args.rounds)
    print(f"{args.crops} DeiT crops of 500x375 -> {side} px bicubic, one thread, ms per crop (best of {args.rounds})")
    for label, value in results.items():
        print(f"{label:<32}{value:8.3f}")
    return results


if __name__ == "__main__":
    main()
