"""timm's RandAugment operations on uint8 ``[3, H, W]`` tensors, on any device, for magnitudes drawn elsewhere.

:func:`draw_rand_augment` makes the draws of timm's ``RandAugment`` for one sample (which operations, whether
each applies, its magnitude and sign) exactly as :class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform`
makes them, and returns them as ``(operation id, argument)`` pairs; :func:`apply_rand_augment` applies them to a
tensor. The operations follow timm's Pillow ones:

- exactly: invert, solarize, solarize-add, posterize, brightness (a blend with black);
- to rounding (a level or two of 255): colour and contrast (torchvision's grey is ``0.2989 R + 0.587 G + 0.114
  B`` in float, Pillow's the integer ``(299 R + 587 G + 114 B) / 1000``; contrast blends with the grey mean, which
  Pillow rounds to an integer), sharpness, auto-contrast, equalize (torchvision's ports of Pillow's);
- rotate, shear and translate sample with ``grid_sample``'s bicubic (a = -0.75) where Pillow's affine transform uses
  a = -0.5, at the same source coordinates and with the same fill outside the image: they differ by a few levels
  of 255 at edges inside the image.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from timm.data import auto_augment

__all__ = ["DEVICE_OPS", "apply_rand_augment", "draw_rand_augment", "unsupported_ops"]

# timm's operation names → the device operation that replaces it (the index is what a batch carries).
_NAMES = {
    "AutoContrast": "autocontrast",
    "Equalize": "equalize",
    "Invert": "invert",
    "Rotate": "rotate",
    "Posterize": "posterize",
    "PosterizeIncreasing": "posterize",
    "PosterizeOriginal": "posterize",
    "Solarize": "solarize",
    "SolarizeIncreasing": "solarize",
    "SolarizeAdd": "solarize_add",
    "Color": "color",
    "ColorIncreasing": "color",
    "Contrast": "contrast",
    "ContrastIncreasing": "contrast",
    "Brightness": "brightness",
    "BrightnessIncreasing": "brightness",
    "Sharpness": "sharpness",
    "SharpnessIncreasing": "sharpness",
    "ShearX": "shear_x",
    "ShearY": "shear_y",
    "TranslateX": "translate_x",
    "TranslateY": "translate_y",
    "TranslateXRel": "translate_x_rel",
    "TranslateYRel": "translate_y_rel",
}
DEVICE_OPS = tuple(dict.fromkeys(_NAMES.values()))
SKIPPED = -1


def unsupported_ops(step: auto_augment.RandAugment) -> list[str]:
    """The names of ``step``'s operations that have no device version (or draw a random filter)."""
    names = [op.name for op in step.ops if op.name not in _NAMES]
    names += [op.name for op in step.ops if isinstance(op.kwargs.get("resample"), list | tuple)]
    return sorted(set(names))


def draw_rand_augment(
    step: auto_augment.RandAugment, choice: random.Random, rng: random.Random
) -> list[tuple[int, float]]:
    """timm's draws for one sample: operations from ``choice``, the rest from ``rng`` as ``AugmentOp`` draws them.

    Returns ``(device operation id or -1 when the operation does not apply, its argument)`` per layer.
    """
    if step.choice_weights is None:
        ops = [step.ops[int(choice.random() * len(step.ops))] for _ in range(step.num_layers)]
    else:
        ops = choice.choices(step.ops, weights=step.choice_weights, k=step.num_layers)
    drawn = []
    module_random, auto_augment.random = auto_augment.random, rng  # the level functions negate with it
    try:
        for op in ops:
            if op.prob < 1.0 and rng.random() > op.prob:
                drawn.append((SKIPPED, 0.0))
                continue
            magnitude = op.magnitude
            if op.magnitude_std == float("inf"):
                magnitude = rng.uniform(0, magnitude)
            elif op.magnitude_std > 0:
                magnitude = rng.gauss(magnitude, op.magnitude_std)
            magnitude = max(0.0, min(magnitude, op.magnitude_max or auto_augment._LEVEL_DENOM))
            args = op.level_fn(magnitude, op.hparams) if op.level_fn is not None else (0.0,)
            drawn.append((DEVICE_OPS.index(_NAMES[op.name]), float(args[0])))
    finally:
        auto_augment.random = module_random
    return drawn


def _affine(image: torch.Tensor, matrix: Sequence[float], fill: torch.Tensor) -> torch.Tensor:
    """Pillow's ``Image.transform(AFFINE, matrix, BICUBIC, fillcolor)``: output pixel centre (x, y) samples the
    input at ``(a x + b y + c, d x + e y + f)``; sources outside the image take ``fill``."""
    _, height, width = image.shape
    a, b, c, d, e, f = matrix
    ys = torch.arange(height, device=image.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=image.device, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    source_x, source_y = a * x + b * y + c, d * x + e * y + f
    grid = torch.stack((source_x * 2 / width - 1, source_y * 2 / height - 1), dim=-1)[None]
    sampled = F.grid_sample(image[None].float(), grid, mode="bicubic", padding_mode="border", align_corners=False)[0]
    inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    result = torch.where(inside, sampled, fill.to(sampled.device, torch.float32)[:, None, None])
    return result.round_().clamp_(0, 255).to(torch.uint8)


def _rotation(degrees: float, width: int, height: int) -> list[float]:
    """The inverse matrix Pillow's ``Image.rotate`` builds: a turn about the image's centre."""
    angle = -math.radians(degrees % 360.0)
    cos, sin = round(math.cos(angle), 15), round(math.sin(angle), 15)
    centre_x, centre_y = width / 2.0, height / 2.0
    c = cos * -centre_x + sin * -centre_y + centre_x
    f = -sin * -centre_x + cos * -centre_y + centre_y
    return [cos, sin, c, -sin, cos, f]


def _blend(image: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    """Pillow's ``ImageEnhance`` blend ``other + factor (image - other)``, clipped and truncated to uint8 as
    Pillow's ``Image.blend`` does."""
    mixed = other.float() + factor * (image.float() - other.float())
    return mixed.clamp_(0, 255).to(torch.uint8)


def _grey(image: torch.Tensor) -> torch.Tensor:
    """Pillow's ``convert("L")``: ``(299 R + 587 G + 114 B + 500) // 1000``, as uint8 ``[1, H, W]``."""
    weights = torch.tensor([299, 587, 114], device=image.device, dtype=torch.int32)[:, None, None]
    return ((image.int() * weights).sum(0, keepdim=True) + 500).div(1000, rounding_mode="floor").to(torch.uint8)


def _apply(image: torch.Tensor, name: str, arg: float, fill: torch.Tensor) -> torch.Tensor:
    _, height, width = image.shape
    if name == "autocontrast":
        return TF.autocontrast(image)
    if name == "equalize":
        return TF.equalize(image)
    if name == "invert":
        return TF.invert(image)
    if name == "posterize":
        return image if arg >= 8 else image & (0xFF << (8 - int(arg)) & 0xFF)
    if name == "solarize":
        return torch.where(image >= arg, 255 - image, image)
    if name == "solarize_add":
        return torch.where(image < 128, (image.int() + int(arg)).clamp(0, 255).to(torch.uint8), image)
    if name == "brightness":
        return _blend(image, torch.zeros_like(image), arg)
    if name == "color":
        return _blend(image, _grey(image).expand_as(image), arg)
    if name == "contrast":
        mean = int(_grey(image).double().mean().item() + 0.5)
        return _blend(image, torch.full_like(image, mean), arg)
    if name == "sharpness":
        return TF.adjust_sharpness(image, arg)
    matrices = {
        "rotate": lambda: _rotation(arg, width, height),
        "shear_x": lambda: [1, arg, 0, 0, 1, 0],
        "shear_y": lambda: [1, 0, 0, arg, 1, 0],
        "translate_x": lambda: [1, 0, arg, 0, 1, 0],
        "translate_y": lambda: [1, 0, 0, 0, 1, arg],
        "translate_x_rel": lambda: [1, 0, arg * width, 0, 1, 0],
        "translate_y_rel": lambda: [1, 0, 0, 0, 1, arg * height],
    }
    return _affine(image, matrices[name](), fill)


def apply_rand_augment(image: torch.Tensor, drawn: Sequence[tuple[int, float]], fill: torch.Tensor) -> torch.Tensor:
    """Apply drawn ``(operation id, argument)`` pairs to a uint8 ``[3, H, W]`` image; ``fill``: the RGB fill of
    the geometric operations (timm's ``img_mean``)."""
    for index, arg in drawn:
        if index != SKIPPED:
            image = _apply(image, DEVICE_OPS[int(index)], float(arg), fill)
    return image
