"""The offline digits dataset and the image preprocessing helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ViTImageProcessor

from smmix_hf.data import (
    DIGITS_DATASET_NAME,
    TransformSettings,
    build_eval_transform,
    build_train_transform,
    collate_image_batch,
    load_digits_dataset,
    make_batch_transform,
    settings_from_image_processor,
    to_rgb,
)


@pytest.fixture(scope="module")
def digits():
    """The digits at 24x24 pixels."""
    return load_digits_dataset(image_size=24, validation_fraction=0.2, seed=0)


def test_digits_splits_and_labels(digits) -> None:
    assert DIGITS_DATASET_NAME == "sklearn-digits"
    assert set(digits) == {"train", "validation"}
    assert digits["train"].num_rows + digits["validation"].num_rows == 1797
    assert digits["validation"].num_rows == 360
    label_feature = digits["train"].features["label"]
    assert label_feature.names == [str(digit) for digit in range(10)]
    assert set(digits["validation"]["label"]) == set(range(10))
    assert set(digits["train"]["label"]) == set(range(10))


def test_digits_images_are_rgb_squares_with_contrast(digits) -> None:
    image = digits["validation"][0]["image"]
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert image.size == (24, 24)
    pixels = np.asarray(image)
    assert pixels.min() < 30 and pixels.max() > 200
    assert np.array_equal(pixels[..., 0], pixels[..., 2])


def test_digits_split_is_seeded() -> None:
    first = load_digits_dataset(image_size=8, seed=3)["validation"]["label"]
    second = load_digits_dataset(image_size=8, seed=3)["validation"]["label"]
    assert first == second


def test_digits_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        load_digits_dataset(validation_fraction=1.0)


def test_settings_from_vit_image_processor() -> None:
    processor = ViTImageProcessor(
        size={"height": 48, "width": 48}, image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6]
    )
    settings = settings_from_image_processor(processor, crop_pct=0.9)
    assert settings.image_size == 48
    assert settings.mean == (0.1, 0.2, 0.3)
    assert settings.std == (0.4, 0.5, 0.6)
    assert settings.crop_pct == 0.9


def test_settings_from_shortest_edge_and_bad_override() -> None:
    class Processor:
        def __init__(self) -> None:
            self.size = {"shortest_edge": 40}
            self.image_mean = [0.5, 0.5, 0.5]
            self.image_std = [0.5, 0.5, 0.5]

    assert settings_from_image_processor(Processor()).image_size == 40
    with pytest.raises(ValueError, match="Unknown transform settings"):
        settings_from_image_processor(Processor(), imgsize=3)


def test_train_and_eval_transforms_shape_and_normalization() -> None:
    settings = TransformSettings(image_size=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    white = Image.new("RGB", (40, 30), (255, 255, 255))
    for transform in (build_train_transform(settings), build_eval_transform(settings)):
        tensor = transform(white)
        assert tensor.shape == (3, 16, 16)
        assert tensor.dtype == torch.float32
        assert torch.allclose(tensor, torch.full_like(tensor, 2.0), atol=1e-5)


def test_bad_transform_settings_raise() -> None:
    with pytest.raises(ValueError, match="interpolation"):
        TransformSettings(image_size=8, mean=(0, 0, 0), std=(1, 1, 1), interpolation="cubic")
    with pytest.raises(ValueError, match="crop_pct"):
        TransformSettings(image_size=8, mean=(0, 0, 0), std=(1, 1, 1), crop_pct=1.5)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_to_rgb_handles_modes(mode: str) -> None:
    image = Image.new(mode, (5, 4))
    converted = to_rgb(image)
    assert converted.mode == "RGB"
    assert converted.size == (5, 4)


def test_to_rgb_composites_alpha_on_white_and_scales_sixteen_bit() -> None:
    transparent = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert np.asarray(to_rgb(transparent)).min() == 255
    sixteen_bit = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
    assert sixteen_bit.mode.startswith("I;16")
    assert np.asarray(to_rgb(sixteen_bit)).min() == 255
    with pytest.raises(ValueError, match=r"PIL\.Image\.Image"):
        to_rgb(np.zeros((2, 2)))


def test_batch_transform_and_collate(digits) -> None:
    settings = TransformSettings(image_size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    batch_transform = make_batch_transform(build_eval_transform(settings))
    dataset = digits["train"].select(range(6)).with_transform(batch_transform)
    row = dataset[0]
    assert set(row) == {"pixel_values", "labels"}
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate_image_batch)
    batch = next(iter(loader))
    assert batch["pixel_values"].shape == (4, 3, 16, 16)
    assert batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].dtype == torch.long
    assert batch["labels"].tolist() == digits["train"]["label"][:4]


def test_batch_transform_reports_missing_column(digits) -> None:
    settings = TransformSettings(image_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    dataset = (
        digits["train"]
        .select(range(2))
        .with_transform(make_batch_transform(build_eval_transform(settings), image_column="img"))
    )
    with pytest.raises(ValueError, match="'img'"):
        dataset[0]
