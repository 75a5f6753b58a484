"""Image preprocessing for training and evaluation: torchvision transforms, RGB conversion, batching.

Training uses the DeiT-style ``RandomResizedCrop`` + horizontal flip; evaluation resizes to
``image_size / crop_pct`` and center-crops. Both normalize with the model's image processor statistics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

__all__ = [
    "TransformSettings",
    "build_eval_transform",
    "build_train_transform",
    "collate_image_batch",
    "make_batch_transform",
    "settings_from_image_processor",
    "to_rgb",
]

ImageTransform = Callable[[Image.Image], torch.Tensor]

_INTERPOLATIONS = {
    "nearest": transforms.InterpolationMode.NEAREST,
    "bilinear": transforms.InterpolationMode.BILINEAR,
    "bicubic": transforms.InterpolationMode.BICUBIC,
    "box": transforms.InterpolationMode.BOX,
    "hamming": transforms.InterpolationMode.HAMMING,
    "lanczos": transforms.InterpolationMode.LANCZOS,
}

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _triple(name: str, value: object) -> tuple[float, float, float]:
    """Coerce a per-channel statistic to three floats."""
    values = tuple(float(item) for item in np.asarray(value, dtype=np.float64).reshape(-1))
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ValueError(f"{name} must have 1 or 3 values (one per RGB channel), got {len(values)}.")
    return values  # type: ignore[return-value]


@dataclass
class TransformSettings:
    """Everything the train and eval transforms need.

    ``image_size`` is the square model input side; ``mean`` / ``std`` normalize each RGB channel;
    ``random_resized_crop_scale`` bounds the crop area of training crops; ``crop_pct`` is the share of the
    resized evaluation image kept by the center crop; ``interpolation`` names the resampling filter.
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    random_resized_crop_scale: tuple[float, float] = (0.08, 1.0)
    horizontal_flip: bool = True
    crop_pct: float = 0.875
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        """Normalize the field types and reject values the transforms cannot use."""
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {self.image_size!r}.")
        self.mean = _triple("mean", self.mean)
        self.std = _triple("std", self.std)
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive in every channel, got {self.std}.")
        low, high = (float(bound) for bound in self.random_resized_crop_scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(
                f"random_resized_crop_scale must satisfy 0 < low <= high <= 1, got {self.random_resized_crop_scale}."
            )
        self.random_resized_crop_scale = (low, high)
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}; 0.875 is the usual value.")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"Unknown interpolation {self.interpolation!r}; use one of {', '.join(sorted(_INTERPOLATIONS))}."
            )

    @property
    def interpolation_mode(self) -> transforms.InterpolationMode:
        """The torchvision interpolation mode named by ``interpolation``."""
        return _INTERPOLATIONS[self.interpolation]


def _size_entry(size: object, key: str) -> Any:
    """Read ``key`` from an image processor ``size`` given as a dict or as an object with attributes."""
    if isinstance(size, Mapping):
        return size.get(key)
    return getattr(size, key, None)


def _image_size_from_processor(size: object) -> int:
    """The square input side described by an image processor's ``size``."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    height, width = _size_entry(size, "height"), _size_entry(size, "width")
    if height is not None and width is not None:
        if height != width:
            raise ValueError(
                f"The image processor size is {height}x{width}, not square; pass image_size=... to override it."
            )
        return int(height)
    shortest_edge = _size_entry(size, "shortest_edge")
    if shortest_edge is not None:
        return int(shortest_edge)
    raise ValueError(
        f"Cannot read an input size from image processor size {size!r}; pass image_size=... to override it."
    )


def settings_from_image_processor(image_processor: Any, **overrides: Any) -> TransformSettings:
    """Build ``TransformSettings`` from a transformers image processor's size, mean and std.

    ``size`` may hold ``height`` / ``width`` or ``shortest_edge``; any ``TransformSettings`` field given in
    ``overrides`` replaces the value read from the processor.
    """
    field_names = {field.name for field in dataclasses.fields(TransformSettings)}
    unknown = sorted(set(overrides) - field_names)
    if unknown:
        raise ValueError(f"Unknown transform settings {unknown}; valid names are {sorted(field_names)}.")
    values: dict[str, Any] = {}
    for name, attribute in (("mean", "image_mean"), ("std", "image_std")):
        if name not in overrides:
            statistic = getattr(image_processor, attribute, None)
            if statistic is None:
                raise ValueError(f"The image processor has no {attribute}; pass {name}=... to override it.")
            values[name] = statistic
    if "image_size" not in overrides:
        values["image_size"] = _image_size_from_processor(getattr(image_processor, "size", None))
    values.update(overrides)
    return TransformSettings(**values)


def build_train_transform(settings: TransformSettings) -> ImageTransform:
    """Random resized crop, optional horizontal flip, tensor conversion and normalization."""
    steps: list[Callable[[Any], Any]] = [
        transforms.RandomResizedCrop(
            settings.image_size,
            scale=settings.random_resized_crop_scale,
            interpolation=settings.interpolation_mode,
        )
    ]
    if settings.horizontal_flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(settings.mean, settings.std)]
    return transforms.Compose(steps)


def build_eval_transform(settings: TransformSettings) -> ImageTransform:
    """Resize the short side to ``image_size / crop_pct``, center-crop ``image_size``, convert, normalize."""
    resize_to = int(settings.image_size / settings.crop_pct)
    return transforms.Compose(
        [
            transforms.Resize(resize_to, interpolation=settings.interpolation_mode),
            transforms.CenterCrop(settings.image_size),
            transforms.ToTensor(),
            transforms.Normalize(settings.mean, settings.std),
        ]
    )


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


def make_batch_transform(
    transform: ImageTransform, image_column: str = "image", label_column: str = "label"
) -> Callable[[Mapping[str, list[Any]]], dict[str, list[Any]]]:
    """A batch function for ``Dataset.set_transform`` / ``with_transform`` yielding model inputs.

    It converts every image of the batch to RGB, applies ``transform`` and returns
    ``{"pixel_values": [tensor, ...], "labels": [int, ...]}``.
    """

    def apply(batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        """Transform one batch of rows."""
        for column in (image_column, label_column):
            if column not in batch:
                raise ValueError(
                    f"The dataset has no column {column!r} (columns: {sorted(batch)}); "
                    "pass image_column= / label_column= to make_batch_transform."
                )
        return {
            "pixel_values": [transform(to_rgb(image)) for image in batch[image_column]],
            "labels": [int(label) for label in batch[label_column]],
        }

    return apply


def collate_image_batch(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack rows into ``{"pixel_values": float [B, 3, H, W], "labels": long [B]}``."""
    if not examples:
        raise ValueError("collate_image_batch got an empty list of examples; use a batch size of at least 1.")
    pixel_values = torch.stack([torch.as_tensor(example["pixel_values"]) for example in examples]).float()
    labels = torch.tensor([int(example["labels"]) for example in examples], dtype=torch.long)
    return {"pixel_values": pixel_values, "labels": labels}
