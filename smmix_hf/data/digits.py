"""scikit-learn's bundled handwritten digits (1,797 8x8 images) as an RGB image-classification dataset.

The data ships inside scikit-learn, so this dataset is available offline: it serves smoke tests and small
end-to-end runs of the SMMix training pipeline.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import datasets
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

if TYPE_CHECKING:
    import torch

__all__ = ["DIGITS_CLASS_NAMES", "DIGITS_DATASET_NAME", "digits_tensors", "load_digits_dataset"]

DIGITS_DATASET_NAME = "sklearn-digits"
DIGITS_CLASS_NAMES = [str(digit) for digit in range(10)]

_MAX_DIGIT_VALUE = 16.0


def _to_rgb_image(values: np.ndarray, image_size: int) -> Image.Image:
    """Turn one 8x8 array of 0..16 intensities into an ``image_size`` square RGB image."""
    gray = np.clip(np.rint(values * (255.0 / _MAX_DIGIT_VALUE)), 0, 255).astype(np.uint8)
    image = Image.fromarray(gray)
    if image_size != gray.shape[0]:
        image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return image.convert("RGB")


def _split_features() -> datasets.Features:
    """Column types of both splits."""
    label = datasets.ClassLabel(names=DIGITS_CLASS_NAMES)
    return datasets.Features({"image": datasets.Image(), "label": label})


def load_digits_dataset(image_size: int = 32, validation_fraction: float = 0.2, seed: int = 0) -> datasets.DatasetDict:
    """Load the digits as a ``DatasetDict`` with a stratified ``"train"`` / ``"validation"`` split.

    Each row has an ``image`` (RGB PIL image of ``image_size`` x ``image_size``, the 8x8 digit scaled to
    0..255 and upsampled bicubically) and a ``label`` (``ClassLabel`` with names ``"0"`` ... ``"9"``).
    ``validation_fraction`` of the rows, rounded up, go to the validation split; ``seed`` fixes the split.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}; pass e.g. 32.")
    bunch = load_digits()
    images, labels = bunch.images, bunch.target.astype(np.int64)
    num_rows, num_classes = len(labels), len(DIGITS_CLASS_NAMES)
    num_validation = math.ceil(validation_fraction * num_rows) if 0.0 < validation_fraction < 1.0 else 0
    if not num_classes <= num_validation <= num_rows - num_classes:
        raise ValueError(
            f"validation_fraction={validation_fraction!r} leaves too few rows in one split for a stratified "
            f"split of {num_classes} classes; pass a value between {num_classes / num_rows:.4f} and "
            f"{1 - num_classes / num_rows:.4f}."
        )
    train_index, validation_index = train_test_split(
        np.arange(num_rows), test_size=num_validation, stratify=labels, random_state=seed
    )
    features = _split_features()
    splits = {}
    for split, index in (("train", np.sort(train_index)), ("validation", np.sort(validation_index))):
        rows = {
            "image": [_to_rgb_image(images[i], image_size) for i in index],
            "label": [int(labels[i]) for i in index],
        }
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    return datasets.DatasetDict(splits)


def digits_tensors(split: str = "train", image_size: int = 32) -> torch.utils.data.TensorDataset:
    """One split of :func:`load_digits_dataset` as tensors, for a plain PyTorch loop: images ``[N, 3, S, S]``
    scaled to [-1, 1] (mean and std 0.5) and integer labels ``[N]``."""
    import torch

    split_rows = load_digits_dataset(image_size)[split]
    pixels = np.stack([np.asarray(image, dtype=np.float32) for image in split_rows["image"]])
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2) / 127.5 - 1.0
    return torch.utils.data.TensorDataset(images, torch.tensor(split_rows["label"], dtype=torch.long))
