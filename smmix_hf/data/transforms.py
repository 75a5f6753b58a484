"""Image preprocessing for training and evaluation: timm's ImageNet transforms, batching.

Training is timm's ImageNet training transform (``timm.data.create_transform``): random resized crop to
the model's input side, horizontal flip, an optional auto-augmentation policy (RandAugment in the DeiT
recipe), colour jitter (which timm leaves out whenever an auto-augmentation policy is on), normalisation
and random erasing. Evaluation resizes the short side to ``image_size / crop_pct`` and centre-crops
``image_size``; it runs through a transformers image processor (:func:`evaluation_image_processor`), so the
processor saved with the model gives ``pipeline()`` the very pixels that evaluation saw.

:func:`settings_from_image_processor` reads the input side, crop share, resampling filter and statistics
from a checkpoint's image processor: ``crop_size`` when it centre-crops (DeiT: resize 256, crop 224), else
``size``; a timm model's ``pretrained_cfg`` (``input_size``, ``crop_pct``, ``interpolation``, ``mean``,
``std``).

:class:`TransformSettings` defaults to the plain crop and flip; :data:`DEIT_TRAIN_AUGMENTATION` holds the
DeiT recipe's values, which the command line uses by default.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from torch.utils.data import default_collate
from torchvision import transforms
from transformers import BaseImageProcessor, DeiTImageProcessor
from transformers.image_utils import PILImageResampling

from smmix_hf.data.images import SkipCounter, decode_image, image_source_name, to_rgb
from smmix_hf.data.posterize import keep_zero_bit_posterize

__all__ = [
    "DEIT_TRAIN_AUGMENTATION",
    "TransformSettings",
    "build_eval_transform",
    "build_train_transform",
    "collate_image_batch",
    "evaluation_image_processor",
    "make_batch_transform",
    "make_example_transform",
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
_RESAMPLING_NAMES = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
    PILImageResampling.BOX: "box",
    PILImageResampling.HAMMING: "hamming",
    PILImageResampling.LANCZOS: "lanczos",
}
_AUTO_AUGMENT_POLICIES = ("rand", "augmix", "original", "originalr", "v0", "v0r", "3a")
_ERASING_MODES = ("const", "rand", "pixel")

DEIT_TRAIN_AUGMENTATION: dict[str, Any] = {
    "random_resized_crop_scale": (0.08, 1.0),
    "random_resized_crop_ratio": (3 / 4, 4 / 3),
    "horizontal_flip": True,
    "interpolation": "bicubic",
    "auto_augment": "rand-m9-mstd0.5-inc1",
    "color_jitter": 0.4,
    "random_erasing": 0.25,
    "random_erasing_mode": "pixel",
    "random_erasing_count": 1,
}


def _triple(name: str, value: object) -> tuple[float, float, float]:
    """Coerce a per-channel statistic to three floats."""
    values = tuple(float(item) for item in np.asarray(value, dtype=np.float64).reshape(-1))
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise ValueError(f"{name} must have 1 or 3 values (one per RGB channel), got {len(values)}.")
    return values  # type: ignore[return-value]


def _bounds(name: str, value: Sequence[float], low: float, high: float) -> tuple[float, float]:
    """A ``(min, max)`` pair with ``low < min <= max <= high``."""
    first, second = (float(bound) for bound in value)
    if not low < first <= second <= high:
        raise ValueError(f"{name} must satisfy {low} < min <= max <= {high}, got {tuple(value)}.")
    return first, second


@dataclass
class TransformSettings:
    """Everything the train and eval transforms need.

    ``image_size`` is the square model input side; ``mean`` / ``std`` normalize each RGB channel;
    ``random_resized_crop_scale`` / ``_ratio`` bound the area share and aspect ratio of training crops;
    ``crop_pct`` is the share of the resized evaluation image kept by the center crop; ``interpolation``
    names the resampling filter. ``auto_augment`` is a timm policy string (``rand-m9-mstd0.5-inc1`` is
    DeiT's RandAugment) or None; ``color_jitter`` is the brightness / contrast / saturation strength, which
    timm applies only when ``auto_augment`` is None; ``random_erasing`` is the probability of erasing a
    random rectangle (``random_erasing_mode`` const / rand / pixel, up to ``random_erasing_count`` boxes).
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    random_resized_crop_scale: tuple[float, float] = (0.08, 1.0)
    random_resized_crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    horizontal_flip: bool = True
    crop_pct: float = 0.875
    interpolation: str = "bicubic"
    auto_augment: str | None = None
    color_jitter: float = 0.0
    random_erasing: float = 0.0
    random_erasing_mode: str = "pixel"
    random_erasing_count: int = 1

    def __post_init__(self) -> None:
        """Normalize the field types and reject values the transforms cannot use."""
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {self.image_size!r}.")
        self.mean = _triple("mean", self.mean)
        self.std = _triple("std", self.std)
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive in every channel, got {self.std}.")
        self.random_resized_crop_scale = _bounds("random_resized_crop_scale", self.random_resized_crop_scale, 0, 1)
        self.random_resized_crop_ratio = _bounds("random_resized_crop_ratio", self.random_resized_crop_ratio, 0, 100)
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}; 0.875 is the usual value.")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"Unknown interpolation {self.interpolation!r}; use one of {', '.join(sorted(_INTERPOLATIONS))}."
            )
        if self.auto_augment is not None and str(self.auto_augment).lower() in ("", "none", "false"):
            self.auto_augment = None
        if self.auto_augment is not None and str(self.auto_augment).split("-")[0] not in _AUTO_AUGMENT_POLICIES:
            raise ValueError(
                f"auto_augment {self.auto_augment!r} is not a timm policy; use e.g. 'rand-m9-mstd0.5-inc1' "
                "(DeiT's RandAugment), 'augmix-m5-w3', 'original' or 'none'."
            )
        if self.color_jitter < 0:
            raise ValueError(f"color_jitter must be >= 0 (0 switches it off), got {self.color_jitter!r}.")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability in [0, 1], got {self.random_erasing!r}.")
        if self.random_erasing_mode not in _ERASING_MODES:
            raise ValueError(
                f"random_erasing_mode must be one of {', '.join(_ERASING_MODES)}, got {self.random_erasing_mode!r}."
            )
        if self.random_erasing_count < 1:
            raise ValueError(f"random_erasing_count must be >= 1, got {self.random_erasing_count!r}.")

    @property
    def interpolation_mode(self) -> transforms.InterpolationMode:
        """The torchvision interpolation mode named by ``interpolation``."""
        return _INTERPOLATIONS[self.interpolation]

    @property
    def eval_resize_size(self) -> int:
        """The short side evaluation resizes to before the centre crop: ``floor(image_size / crop_pct)``."""
        # Rounding first keeps a crop share read from a processor (224 / 256) from landing on 255.99999.
        return math.floor(round(self.image_size / self.crop_pct, 6))


def _size_entry(size: object, key: str) -> Any:
    """Read ``key`` from an image processor ``size`` given as a dict or as an object with attributes."""
    if isinstance(size, Mapping):
        return size.get(key)
    return getattr(size, key, None)


def _side(size: object, what: str) -> int:
    """The square side described by an image processor's ``size`` or ``crop_size``."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    height, width = _size_entry(size, "height"), _size_entry(size, "width")
    if height is not None and width is not None:
        if height != width:
            raise ValueError(
                f"The image processor {what} is {height}x{width}, not square; pass image_size=... to override it."
            )
        return int(height)
    shortest_edge = _size_entry(size, "shortest_edge")
    if shortest_edge is not None:
        return int(shortest_edge)
    raise ValueError(
        f"Cannot read an input size from image processor {what} {size!r}; pass image_size=... to override it."
    )


def _from_timm_processor(data_config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings from a timm model's resolved ``pretrained_cfg`` (``TimmWrapperImageProcessor.data_config``)."""
    height, width = (int(side) for side in data_config["input_size"][-2:])
    if height != width:
        raise ValueError(f"The timm input size is {height}x{width}, not square; pass image_size=... to override it.")
    return {
        "image_size": height,
        "crop_pct": float(data_config.get("crop_pct") or 1.0),
        "interpolation": str(data_config.get("interpolation") or "bicubic"),
        "mean": data_config["mean"],
        "std": data_config["std"],
    }


def _from_transformers_processor(image_processor: Any) -> dict[str, Any]:
    """Settings from a transformers image processor: crop size (or size), crop share, filter and statistics."""
    values: dict[str, Any] = {}
    if getattr(image_processor, "do_normalize", True) is False:
        values["mean"], values["std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        for name, attribute in (("mean", "image_mean"), ("std", "image_std")):
            statistic = getattr(image_processor, attribute, None)
            if statistic is not None:
                values[name] = statistic
    rescale = getattr(image_processor, "rescale_factor", 1 / 255)
    if getattr(image_processor, "do_rescale", True) is False or not math.isclose(rescale, 1 / 255):
        raise ValueError(
            f"The image processor scales pixels by {rescale if image_processor.do_rescale is not False else 1} "
            "instead of 1/255; the transforms here read 8-bit images into [0, 1]. Save the checkpoint's processor "
            "with the usual rescale_factor 1/255."
        )
    resample = getattr(image_processor, "resample", None)
    if resample is not None:
        values["interpolation"] = _RESAMPLING_NAMES[PILImageResampling(resample)]
    size = getattr(image_processor, "size", None)
    crop_size = getattr(image_processor, "crop_size", None)
    if getattr(image_processor, "do_center_crop", False) and crop_size is not None:
        values["image_size"] = _side(crop_size, "crop_size")
        if getattr(image_processor, "do_resize", True) and size is not None:
            values["crop_pct"] = min(1.0, values["image_size"] / _side(size, "size"))
        return values
    if size is not None:
        values["image_size"] = _side(size, "size")
    crop_pct = getattr(image_processor, "crop_pct", None)
    values["crop_pct"] = float(crop_pct) if crop_pct is not None and values.get("image_size", 0) < 384 else 1.0
    return values


def settings_from_image_processor(image_processor: Any, **overrides: Any) -> TransformSettings:
    """Build ``TransformSettings`` from an image processor, with ``overrides`` replacing what it says.

    A processor that centre-crops gives ``image_size`` = its ``crop_size`` and ``crop_pct`` = crop / resize
    side (DeiT's 224 / 256 = 0.875); one that does not gives ``image_size`` = its ``size`` (``height`` /
    ``width`` or ``shortest_edge``) and its own ``crop_pct`` if it has one (ConvNeXT), else 1.0. The resampling
    filter comes from ``resample``, the statistics from ``image_mean`` / ``image_std``. A timm model's
    processor (``TimmWrapperImageProcessor``) gives its ``pretrained_cfg``: ``input_size``, ``crop_pct``,
    ``interpolation``, ``mean`` and ``std``. An override of None means "what the processor says".
    """
    field_names = {field.name for field in dataclasses.fields(TransformSettings)}
    unknown = sorted(set(overrides) - field_names)
    if unknown:
        raise ValueError(f"Unknown transform settings {unknown}; valid names are {sorted(field_names)}.")
    data_config = getattr(image_processor, "data_config", None)
    if isinstance(data_config, Mapping) and "input_size" in data_config:
        values = _from_timm_processor(data_config)
    else:
        values = _from_transformers_processor(image_processor)
    values.update({name: value for name, value in overrides.items() if value is not None})
    for name, attribute in (("mean", "image_mean"), ("std", "image_std"), ("image_size", "size")):
        if name not in values:
            raise ValueError(f"The image processor has no {attribute}; pass {name}=... to override it.")
    return TransformSettings(**values)


def build_train_transform(settings: TransformSettings) -> ImageTransform:
    """timm's ImageNet training transform with the crop, flip, augmentation and erasing of ``settings``.

    Posterize to 0 bits (RandAugment at magnitude 10) gives a black image, as with Pillow <= 12.
    """
    try:
        transform = create_transform(
            settings.image_size,
            is_training=True,
            scale=settings.random_resized_crop_scale,
            ratio=settings.random_resized_crop_ratio,
            hflip=0.5 if settings.horizontal_flip else 0.0,
            color_jitter=settings.color_jitter or None,
            auto_augment=settings.auto_augment,
            interpolation=settings.interpolation,
            mean=settings.mean,
            std=settings.std,
            re_prob=settings.random_erasing,
            re_mode=settings.random_erasing_mode,
            re_count=settings.random_erasing_count,
        )
    except (AssertionError, KeyError, ValueError) as error:
        raise ValueError(
            f"timm rejects auto_augment {settings.auto_augment!r} ({type(error).__name__}: {error}); "
            "use e.g. 'rand-m9-mstd0.5-inc1' or 'none'."
        ) from error
    return keep_zero_bit_posterize(transform)


def evaluation_image_processor(settings: TransformSettings) -> BaseImageProcessor:
    """The transformers image processor of the evaluation transform of ``settings``.

    It resizes the short side to ``settings.eval_resize_size`` (aspect ratio kept), centre-crops
    ``image_size``, scales to [0, 1] and normalises. :func:`build_eval_transform` runs this very processor, so
    saving it with the model makes ``pipeline("image-classification", model=...)`` reproduce evaluation.
    """
    side = settings.image_size
    return DeiTImageProcessor(
        do_resize=True,
        size={"shortest_edge": settings.eval_resize_size},
        resample=PILImageResampling[settings.interpolation.upper()],
        do_center_crop=True,
        crop_size={"height": side, "width": side},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(settings.mean),
        image_std=list(settings.std),
        do_convert_rgb=True,
    )


class _ProcessorTransform:
    """An image processor as a one-image transform: PIL image in, ``[3, H, W]`` float tensor out."""

    def __init__(self, image_processor: BaseImageProcessor) -> None:
        self.image_processor = image_processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(image, return_tensors="pt")["pixel_values"][0]


def build_eval_transform(settings: TransformSettings) -> ImageTransform:
    """Resize the short side to ``image_size / crop_pct``, centre-crop ``image_size``, scale, normalise.

    The work is done by :func:`evaluation_image_processor`, the processor to save with the model.
    """
    return _ProcessorTransform(evaluation_image_processor(settings))


def _check_columns(columns: Sequence[str], image_column: str, label_column: str, function: str) -> None:
    """A dataset without the image or label column is an error naming the columns it has."""
    for column in (image_column, label_column):
        if column not in columns:
            raise ValueError(
                f"The dataset has no column {column!r} (columns: {sorted(columns)}); "
                f"pass image_column= / label_column= to {function}."
            )


def _model_labels(
    labels: Sequence[Any],
    images: Sequence[Any],
    shards: Sequence[str | None],
    num_labels: int | None,
    label_map: Sequence[int] | None,
) -> list[int]:
    """The stored labels as the model's: each checked against ``num_labels`` (an error naming its image), then
    mapped through ``label_map``."""
    labels = [int(label) for label in labels]
    if num_labels is not None:
        for label, image, shard in zip(labels, images, shards, strict=True):
            if not 0 <= label < num_labels:
                raise ValueError(
                    f"image {image_source_name(image, shard)} has label {label}, outside the {num_labels} classes "
                    f"(0..{num_labels - 1}); fix the label or pass --label_names_file naming every class."
                )
    if label_map is not None:
        labels = [int(label_map[label]) for label in labels]
    return labels


def _columns(outputs: list[Any]) -> dict[str, list[Any]]:
    """``pixel_values`` from a transform's outputs; a transform that returns dicts (a uint8 image with what the
    device needs to finish it) gives a column per key, None for an image that did not decode."""
    keys = dict.fromkeys(key for output in outputs if isinstance(output, Mapping) for key in output)
    if not keys:
        return {"pixel_values": outputs}
    return {key: [None if output is None else output[key] for output in outputs] for key in keys}


def make_batch_transform(
    transform: ImageTransform,
    image_column: str = "image",
    label_column: str = "label",
    *,
    strict: bool = False,
    counter: SkipCounter | None = None,
    label_map: Sequence[int] | None = None,
    num_labels: int | None = None,
) -> Callable[[Mapping[str, list[Any]]], dict[str, list[Any]]]:
    """A batch function for ``Dataset.set_transform`` / ``with_transform`` yielding model inputs.

    It decodes every image of the batch to RGB (decoded PIL images, ``{"bytes", "path"}`` records and
    file paths all work), applies ``transform`` and returns ``{"pixel_values": [...], "labels": [...]}`` (a
    transform that returns dicts, such as :class:`~smmix_hf.data.uint8_eval.Uint8EvalTransform`, gives a column
    per key).
    An image that does not decode becomes ``None`` (counted in ``counter``; :func:`collate_image_batch`
    drops it) or, with ``strict``, raises an error naming the file. ``label_map[k]`` replaces label ``k``;
    with ``num_labels`` a label outside 0..num_labels-1 raises an error naming the file.
    """

    def apply(batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        """Transform one batch of rows."""
        _check_columns(list(batch), image_column, label_column, "make_batch_transform")
        shards = batch.get("__url__") or [None] * len(batch[image_column])
        outputs = []
        for value, shard in zip(batch[image_column], shards, strict=True):
            image = decode_image(value, strict=strict, counter=counter, shard=shard)
            outputs.append(None if image is None else transform(image))
        labels = _model_labels(batch[label_column], batch[image_column], shards, num_labels, label_map)
        return {**_columns(outputs), "labels": labels}

    return apply


def make_example_transform(
    transform: ImageTransform,
    image_column: str = "image",
    label_column: str = "label",
    **options: Any,
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The per-example form of :func:`make_batch_transform`, for ``IterableDataset.map``."""
    batch_transform = make_batch_transform(transform, image_column, label_column, **options)

    def apply(example: Mapping[str, Any]) -> dict[str, Any]:
        """Transform one row."""
        batch = batch_transform({key: [value] for key, value in example.items()})
        return {key: values[0] for key, values in batch.items()}

    return apply


def collate_image_batch(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack rows into ``{"pixel_values": float [B, 3, H, W], "labels": long [B]}``.

    Rows of uint8 images (:class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform`) stay uint8, with their
    erase boxes, noise seeds and statistics beside them, for :func:`~smmix_hf.data.device_batch.finish_pixels`.

    Rows whose image did not decode (``pixel_values`` is None) are left out; they were counted and
    named in a warning when they were read. In a DataLoader worker the images are stacked straight into
    shared memory (``default_collate``), which saves a copy on the way to the training process.
    """
    if not examples:
        raise ValueError("collate_image_batch got an empty list of examples; use a batch size of at least 1.")
    kept = [example for example in examples if example["pixel_values"] is not None]
    if not kept:
        raise ValueError(
            f"none of the {len(examples)} images of a batch decodes; the warnings above name the files. "
            "Check the image column (--image_column_name) and the files."
        )
    pixel_values = default_collate([torch.as_tensor(example["pixel_values"]) for example in kept])
    labels = torch.tensor([int(example["labels"]) for example in kept], dtype=torch.long)
    if pixel_values.dtype != torch.uint8 or "pixel_mean" not in kept[0]:
        return {"pixel_values": pixel_values.float(), "labels": labels}
    # A uint8 batch (Uint8TrainTransform) carries what finish_pixels needs on the device, one row per sample.
    batch = {"pixel_values": pixel_values, "labels": labels}
    batch["erase_boxes"] = torch.stack([torch.as_tensor(example["erase_boxes"]) for example in kept])
    for key, dtype in (("erase_seed", torch.int64), ("erase_mode", torch.int64)):
        batch[key] = torch.tensor([int(example[key]) for example in kept], dtype=dtype)
    for key in ("pixel_mean", "pixel_std"):
        batch[key] = torch.tensor([list(example[key]) for example in kept], dtype=torch.float32)
    return batch
