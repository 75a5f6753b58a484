"""Small slices of scikit-learn's bundled handwritten digits, transformed for 32 px models."""

from __future__ import annotations

import datasets
from transformers import ViTImageProcessor

from smmix_hf.data.digits import load_digits_dataset
from smmix_hf.data.transforms import (
    build_eval_transform,
    build_train_transform,
    make_batch_transform,
    settings_from_image_processor,
)

_SPLITS: datasets.DatasetDict | None = None


def digits_processor() -> ViTImageProcessor:
    return ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def digits_split(split: str, count: int, train_transform: bool = False) -> datasets.Dataset:
    """The first ``count`` images of a split, with the train (random crops) or eval transform."""
    global _SPLITS
    if _SPLITS is None:
        _SPLITS = load_digits_dataset(seed=0)
    subset = _SPLITS[split].select(range(count))
    settings = settings_from_image_processor(digits_processor(), horizontal_flip=False, crop_pct=1.0)
    transform = build_train_transform(settings) if train_transform else build_eval_transform(settings)
    return subset.with_transform(make_batch_transform(transform))
