"""Datasets and image preprocessing for SMMix training."""

from smmix_hf.data.digits import DIGITS_CLASS_NAMES, DIGITS_DATASET_NAME, load_digits_dataset
from smmix_hf.data.images import SkipCounter, decode_image
from smmix_hf.data.transforms import (
    DEIT_TRAIN_AUGMENTATION,
    TransformSettings,
    build_eval_transform,
    build_train_transform,
    collate_image_batch,
    make_batch_transform,
    make_example_transform,
    settings_from_image_processor,
    to_rgb,
)

__all__ = [
    "DEIT_TRAIN_AUGMENTATION",
    "DIGITS_CLASS_NAMES",
    "DIGITS_DATASET_NAME",
    "SkipCounter",
    "TransformSettings",
    "build_eval_transform",
    "build_train_transform",
    "collate_image_batch",
    "decode_image",
    "load_digits_dataset",
    "make_batch_transform",
    "make_example_transform",
    "settings_from_image_processor",
    "to_rgb",
]
