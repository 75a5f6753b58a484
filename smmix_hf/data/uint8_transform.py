"""The DeiT training transform as a data worker runs it: crop-only decode, own generators, uint8 out.

:class:`Uint8TrainTransform` runs the very steps of timm's training transform (:func:`build_train_transform`:
random resized crop, flips, RandAugment or another policy, colour jitter) with three differences:

- It takes the stored image (bytes, a path, a record) and decodes only what the crop needs
  (:mod:`~smmix_hf.data.crop_decode`): the box is drawn on the size in the JPEG header first, then libjpeg-turbo
  decodes the box alone.
- It draws from generators of its own, seeded with the sample's seed, instead of seeding and restoring the
  process-wide Python, NumPy and torch generators around every sample (:func:`~smmix_hf.data.seeded.
  seeded_random`, 0.15-0.35 ms a sample, mostly NumPy's state). The Python draws come in timm's order from
  one ``random.Random(seed)``: crop box, the policy's operations, erasing boxes; so the crop boxes are exactly
  timm's ``RandomResizedCropAndInterpolation.get_params`` under ``random.seed(seed)``. The flips draw from a
  ``torch.Generator`` seeded with the seed, as torchvision's do from ``torch.manual_seed(seed)``. Only
  RandAugment's choice of operations (NumPy's global generator in timm) comes from a generator of its own.
- It ends in a uint8 ``[3, H, W]`` tensor. Normalisation and random erasing happen on the device, on the batch
  (:func:`~smmix_hf.data.device_batch.finish_pixels`): the worker only draws each sample's erase boxes, and
  the noise that fills them comes from a generator seeded with the sample's seed, as
  ``torch.manual_seed(seed)`` would give timm's ``RandomErasing``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import auto_augment
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import RandomResizedCropAndInterpolation, str_to_pil_interp
from torchvision import transforms

from smmix_hf.data.crop_decode import (
    decode_box,
    decode_for_crop,
    open_image,
    region_size,
    stored_bytes,
)
from smmix_hf.data.images import to_rgb
from smmix_hf.data.transforms import TransformSettings, build_train_transform

__all__ = ["ERASE_MODES", "Uint8TrainTransform", "crop_box", "pillow_is_simd"]

ERASE_MODES = {"const": 0, "rand": 1, "pixel": 2}
_CHOICE_SALT = 0x5EED_C401CE
# Filters torch's antialiased uint8 resize has, by the recipe's name; the others stay with Pillow.
_TORCH_MODES = {"bilinear": "bilinear", "bicubic": "bicubic"}


@functools.cache
def pillow_is_simd() -> bool:
    """Whether the PIL that runs is pillow-simd's (installed in place of Pillow: its distribution's version)."""
    try:
        return importlib.metadata.version("pillow-simd") == PIL.__version__
    except importlib.metadata.PackageNotFoundError:
        return False


def crop_box(
    rng: random.Random, width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[int, int, int, int]:
    """timm's ``RandomResizedCropAndInterpolation.get_params`` drawing from ``rng``: (top, left, height, width)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = rng.uniform(*scale) * area
        aspect_ratio = math.exp(rng.uniform(*log_ratio))
        target_w = round(math.sqrt(target_area * aspect_ratio))
        target_h = round(math.sqrt(target_area / aspect_ratio))
        if target_w <= width and target_h <= height:
            top = rng.randint(0, height - target_h)
            left = rng.randint(0, width - target_w)
            return top, left, target_h, target_w
    in_ratio = width / height
    if in_ratio < min(ratio):
        target_w, target_h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        target_w, target_h = round(height * max(ratio)), height
    else:
        target_w, target_h = width, height
    return (height - target_h) // 2, (width - target_w) // 2, target_h, target_w


def erase_boxes(rng: random.Random, erasing: RandomErasing, side: int) -> list[tuple[int, int, int, int]]:
    """timm's ``RandomErasing._erase`` draws for a ``side x side`` image: (top, left, height, width) boxes."""
    if rng.random() > erasing.probability:
        return []
    area = side * side
    count = erasing.min_count
    if erasing.min_count != erasing.max_count:
        count = rng.randint(erasing.min_count, erasing.max_count)
    boxes = []
    for _ in range(count):
        for _ in range(10):
            target_area = rng.uniform(erasing.min_area, erasing.max_area) * area / count
            aspect_ratio = math.exp(rng.uniform(*erasing.log_aspect_ratio))
            height = round(math.sqrt(target_area * aspect_ratio))
            width = round(math.sqrt(target_area / aspect_ratio))
            if width < side and height < side:
                top = rng.randint(0, side - height)
                left = rng.randint(0, side - width)
                boxes.append((top, left, height, width))
                break
    return boxes


@contextlib.contextmanager
def _timm_ops_drawing_from(rng: random.Random) -> Iterator[None]:
    """timm's augmentation operations draw from ``rng`` instead of the ``random`` module for the block."""
    module_random = auto_augment.random
    auto_augment.random = rng
    try:
        yield
    finally:
        auto_augment.random = module_random


@contextlib.contextmanager
def _global_generators(seed: int, torch_generator: torch.Generator) -> Iterator[None]:
    """NumPy's global generator seeded with ``seed`` and torch's set to ``torch_generator`` for the block.

    For the steps that draw from those (AugMix from NumPy, colour jitter from torch); both are restored
    afterwards, and ``torch_generator`` moves on by what the step drew.
    """
    numpy_state, torch_state = np.random.get_state(), torch.default_generator.get_state()
    np.random.seed(seed)
    torch.default_generator.set_state(torch_generator.get_state())
    try:
        yield
    finally:
        torch_generator.set_state(torch.default_generator.get_state())
        np.random.set_state(numpy_state)
        torch.default_generator.set_state(torch_state)


class Uint8TrainTransform:
    """Stored image + sample seed → uint8 crop and its erase boxes; see the module docstring.

    ``resize`` is ``"torch"`` (the recipe's filter in torch's uint8 kernel, see :meth:`_resize`), ``"pil"``
    (timm's pixels exactly) or ``"auto"``: Pillow's where the installed PIL is pillow-simd (:func:`pillow_is_simd`),
    whose AVX2 resize is faster than torch's and within 2 levels of Pillow's (``docs/performance.md``), else
    torch's.

    ``transform(value, seed)`` returns ``{"pixel_values": uint8 [3, S, S], "erase_boxes": int32 [count, 4]
    (top, left, height, width; all zero past the drawn boxes), "erase_seed", "erase_mode", "pixel_mean",
    "pixel_std"}``; :func:`~smmix_hf.data.transforms.collate_image_batch` stacks them and
    :func:`~smmix_hf.data.device_batch.finish_pixels` turns the batch into what the model takes.
    """

    takes_seed = True

    def __init__(self, settings: TransformSettings, resize: str = "auto") -> None:
        if resize not in ("auto", "torch", "pil"):
            raise ValueError(f"resize must be 'auto', 'torch' or 'pil', got {resize!r}.")
        if resize == "auto":
            resize = "pil" if pillow_is_simd() else "torch"
        self.settings = settings
        self.side = settings.image_size
        self.interpolation = str_to_pil_interp(settings.interpolation)
        self.torch_mode = _TORCH_MODES.get(settings.interpolation) if resize == "torch" else None
        self.flips: list[tuple[float, Any]] = []
        self.policy: list[Any] = []
        self.erasing: RandomErasing | None = None
        for step in build_train_transform(settings).transforms:
            if isinstance(step, RandomResizedCropAndInterpolation):
                self.scale, self.ratio = step.scale, step.ratio
            elif isinstance(step, transforms.RandomHorizontalFlip):
                self.flips.append((step.p, Image.Transpose.FLIP_LEFT_RIGHT))
            elif isinstance(step, transforms.RandomVerticalFlip):
                self.flips.append((step.p, Image.Transpose.FLIP_TOP_BOTTOM))
            elif isinstance(step, RandomErasing):
                self.erasing = step
            elif not isinstance(step, transforms.Normalize) and type(step).__name__ != "MaybeToTensor":
                self.policy.append(step)
        self.count = self.erasing.max_count if self.erasing is not None else 1
        self.erase_mode = ERASE_MODES[settings.random_erasing_mode]

    def _resize(self, pixels: np.ndarray) -> Image.Image:
        """uint8 ``[H, W, 3]`` pixels of the crop box resized with the recipe's filter: with ``resize="torch"``
        torch's vectorised antialiased resize on uint8 where it has the filter (bilinear, bicubic), else Pillow's.
        The two agree to rounding (a few levels of 255 at most); torch's took a third to a fifth of Pillow's time on
        the development machine (``bench/resize_filters.py``). The ``[1, 3, H, W]`` view of ``[H, W, 3]``
        memory is channels-last, the layout torch's uint8 kernel is fastest on; its planar output goes back to
        Pillow plane by plane (``Image.merge``, a tenth of the time a transposing copy takes)."""
        if self.torch_mode is None:
            return Image.fromarray(pixels).resize((self.side, self.side), self.interpolation)
        resized = F.interpolate(
            torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0),
            size=(self.side, self.side),
            mode=self.torch_mode,
            antialias=True,
        )
        return Image.merge("RGB", [Image.fromarray(plane) for plane in resized[0].numpy()])

    def _crop_and_resize(self, decoded: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
        """Crop first, as timm does (a resize with ``box=`` would also weigh the pixels just outside the box), then
        :meth:`_resize`; a box of fractional pixels (a DCT-scaled decode's) goes to Pillow's resize with ``box=``."""
        left, top, right, bottom = box
        whole = (math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom))
        crop = decoded.crop(whole)
        if whole == box:
            return self._resize(np.array(crop))
        region = (left - whole[0], top - whole[1], right - whole[0], bottom - whole[1])
        return crop.resize((self.side, self.side), self.interpolation, box=region)

    def _decode_crop_resize(self, value: Any, rng: random.Random) -> Image.Image:
        """Draw the crop box on the header's size, decode what it needs, resize: the box alone through libjpeg-turbo
        where it can (:func:`~smmix_hf.data.crop_decode.decode_region`), else with Pillow."""
        data = stored_bytes(value)
        size = region_size(data) if data is not None else None
        if size is not None:
            box = crop_box(rng, *size, self.scale, self.ratio)
            decoded_box = decode_box(data, size, box, self.side)
            if decoded_box is not None:
                pixels, region = decoded_box
                if region is None:
                    return self._resize(pixels)
                return self._crop_and_resize(Image.fromarray(pixels), region)
            image = open_image(data)
        else:
            image = open_image(data if data is not None else value)
            if image.mode != "RGB":
                image.load()
                image = to_rgb(image)
            box = crop_box(rng, *image.size, self.scale, self.ratio)
        decoded, region = decode_for_crop(image, box, self.side)
        if decoded.mode != "RGB":
            decoded = to_rgb(decoded)
        return self._crop_and_resize(decoded, region)

    def _augment(
        self, image: Image.Image, seed: int, rng: random.Random, torch_generator: torch.Generator
    ) -> Image.Image:
        """The policy steps (RandAugment, AutoAugment, AugMix, colour jitter) in timm's order."""
        for step in self.policy:
            if isinstance(step, auto_augment.RandAugment):
                choice = random.Random(seed ^ _CHOICE_SALT)
                if step.choice_weights is None:
                    ops = [step.ops[int(choice.random() * len(step.ops))] for _ in range(step.num_layers)]
                else:
                    ops = choice.choices(step.ops, weights=step.choice_weights, k=step.num_layers)
                with _timm_ops_drawing_from(rng):
                    for op in ops:
                        image = op(image)
            elif isinstance(step, auto_augment.AutoAugment):
                with _timm_ops_drawing_from(rng):
                    image = step(image)
            else:  # AugMix draws from NumPy, colour jitter from torch: seed those for this step alone
                with _timm_ops_drawing_from(rng), _global_generators(seed, torch_generator):
                    image = step(image)
        return image

    def __call__(self, value: Any, seed: int) -> dict[str, Any]:
        rng = random.Random(seed)
        image = self._decode_crop_resize(value, rng)
        # torchvision's flips and colour jitter draw from torch: a generator of the sample's own, in timm's order.
        torch_generator = torch.Generator()
        torch_generator.manual_seed(seed)
        for probability, flip in self.flips:
            if torch.rand(1, generator=torch_generator).item() < probability:
                image = image.transpose(flip)
        image = self._augment(image, seed, rng, torch_generator)
        boxes = np.zeros((self.count, 4), dtype=np.int32)
        if self.erasing is not None:
            for row, erase in enumerate(erase_boxes(rng, self.erasing, self.side)):
                boxes[row] = erase
        pixels = torch.from_numpy(np.stack([np.asarray(plane) for plane in image.split()]))  # contiguous [3, H, W]
        return {
            "pixel_values": pixels,
            "erase_boxes": torch.from_numpy(boxes),
            "erase_seed": seed,
            "erase_mode": self.erase_mode,
            "pixel_mean": self.settings.mean,
            "pixel_std": self.settings.std,
        }
