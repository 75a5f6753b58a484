"""Datasets and image preprocessing for SMMix training.

The names below are imported on first use, so ``smmix_hf.data.arguments`` (plain dataclasses) does not
pull in timm, PIL or ``datasets``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DIGITS_CLASS_NAMES": "smmix_hf.data.digits",
    "DIGITS_DATASET_NAME": "smmix_hf.data.digits",
    "load_digits_dataset": "smmix_hf.data.digits",
    "digits_tensors": "smmix_hf.data.digits",
    "SkipCounter": "smmix_hf.data.images",
    "Uint8TrainTransform": "smmix_hf.data.uint8_transform",
    "finish_pixels": "smmix_hf.data.device_batch",
    "decode_image": "smmix_hf.data.images",
    **{
        name: "smmix_hf.data.transforms"
        for name in (
            "DEIT_TRAIN_AUGMENTATION",
            "TransformSettings",
            "build_eval_transform",
            "build_train_transform",
            "collate_image_batch",
            "make_batch_transform",
            "make_example_transform",
            "settings_from_image_processor",
            "to_rgb",
        )
    },
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'smmix_hf.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
