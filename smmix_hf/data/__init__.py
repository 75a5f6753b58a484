"""Datasets and image preprocessing for SMMix training."""

from smmix_hf.data.digits import DIGITS_CLASS_NAMES, DIGITS_DATASET_NAME, load_digits_dataset
from smmix_hf.data.transforms import (
    TransformSettings,
    build_eval_transform,
    build_train_transform,
    collate_image_batch,
    make_batch_transform,
    settings_from_image_processor,
    to_rgb,
)

__all__ = [
    "DIGITS_CLASS_NAMES",
    "DIGITS_DATASET_NAME",
    "TransformSettings",
    "build_eval_transform",
    "build_train_transform",
    "collate_image_batch",
    "load_digits_dataset",
    "make_batch_transform",
    "settings_from_image_processor",
    "to_rgb",
]
