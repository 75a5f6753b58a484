"""The image preprocessing: the bundled digits, the DeiT training transform through timm, the evaluation
transform, the settings read from an image processor, decoding every PIL mode, batching, and undecodable images:
skipped and counted, or fatal with --strict_images."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
from data_files import CORRUPT_BYTES, image_bytes
from PIL import Image
from timm.data.auto_augment import AugmentOp, RandAugment
from timm.data.random_erasing import RandomErasing
from torchvision import transforms
from transformers import ViTImageProcessor

from smmix_hf.data import DIGITS_DATASET_NAME, load_digits_dataset, settings_from_image_processor, to_rgb
from smmix_hf.data.images import ImageDecodeError, SkipCounter, decode_image
from smmix_hf.data.posterize import keep_zero_bit_posterize, pillow_rejects_zero_bits
from smmix_hf.data.transforms import (
    DEIT_TRAIN_AUGMENTATION,
    TransformSettings,
    build_eval_transform,
    build_train_transform,
    collate_image_batch,
    evaluation_image_processor,
    make_batch_transform,
)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def deit(**overrides) -> TransformSettings:
    return TransformSettings(image_size=32, mean=MEAN, std=STD, **{**DEIT_TRAIN_AUGMENTATION, **overrides})


def encoded(image: Image.Image, image_format: str) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return {"bytes": buffer.getvalue(), "path": f"sample.{image_format.lower()}"}


# ---- the bundled digits ----


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


# ---- settings and transforms ----


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


def test_deit_recipe_is_timms_transform_with_every_knob():
    steps = build_train_transform(deit()).transforms
    names = [type(step).__name__ for step in steps]
    assert names == [
        "RandomResizedCropAndInterpolation", "RandomHorizontalFlip", "RandAugment", "MaybeToTensor", "Normalize",
        "RandomErasing",
    ]  # fmt: skip
    crop, flip, augment, _, normalize, erasing = steps
    assert crop.scale == (0.08, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3)) and crop.size == (32, 32)
    assert crop.interpolation.name == "BICUBIC" and flip.p == 0.5
    assert isinstance(augment, RandAugment) and augment.num_layers == 2
    assert all(op.magnitude == 9 and op.magnitude_std == 0.5 for op in augment.ops)
    assert "PosterizeIncreasing" in [op.name for op in augment.ops]
    assert torch.allclose(normalize.mean, torch.tensor(MEAN)) and torch.allclose(normalize.std, torch.tensor(STD))
    assert isinstance(erasing, RandomErasing) and erasing.probability == 0.25 and erasing.mode == "pixel"
    assert erasing.max_count == 1


def test_colour_jitter_only_without_auto_augment_and_flip_can_be_off():
    names = [type(step).__name__ for step in build_train_transform(deit(auto_augment="none")).transforms]
    assert "ColorJitter" in names and "RandAugment" not in names
    plain = build_train_transform(deit(auto_augment=None, color_jitter=0.0, random_erasing=0.0, horizontal_flip=False))
    assert [type(step).__name__ for step in plain.transforms] == [
        "RandomResizedCropAndInterpolation", "MaybeToTensor", "Normalize",
    ]  # fmt: skip


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="interpolation"):
        TransformSettings(image_size=8, mean=(0, 0, 0), std=(1, 1, 1), interpolation="cubic")
    with pytest.raises(ValueError, match="crop_pct"):
        TransformSettings(image_size=8, mean=(0, 0, 0), std=(1, 1, 1), crop_pct=1.5)
    with pytest.raises(ValueError, match="auto_augment 'randaug' is not a timm policy"):
        deit(auto_augment="randaug")
    with pytest.raises(ValueError, match="timm rejects auto_augment 'rand-q9'"):
        build_train_transform(deit(auto_augment="rand-q9"))
    with pytest.raises(ValueError, match="random_erasing is a probability"):
        deit(random_erasing=1.5)
    with pytest.raises(ValueError, match="random_erasing_mode must be one of const, rand, pixel"):
        deit(random_erasing_mode="zeros")


def test_deit_transform_runs_on_many_images_and_posterize_to_zero_bits_is_black():
    transform = build_train_transform(deit())
    source = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    for _ in range(300):
        assert transform(source).shape == (3, 32, 32)
    op = AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=10)
    gray = Image.new("RGB", (8, 8), (200, 100, 50))
    if pillow_rejects_zero_bits():
        with pytest.raises(ValueError, match="bits must be between"):
            op(gray)
    fixed = keep_zero_bit_posterize(transforms.Compose([op]))
    assert np.asarray(fixed(gray)).max() == 0


def test_eval_resizes_to_size_over_crop_pct_then_centre_crops():
    settings = TransformSettings(image_size=32, mean=(0, 0, 0), std=(1, 1, 1), crop_pct=0.875)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    resized = transforms.Resize(36, interpolation=transforms.InterpolationMode.BICUBIC)(image)
    expected = transforms.CenterCrop(32)(resized)
    pixels = build_eval_transform(settings)(image)
    # The image processor resizes uint8 tensors (antialiased bicubic), PIL resizes images: at most 1/255 apart.
    assert torch.allclose(pixels, transforms.ToTensor()(expected), atol=1 / 255 + 1e-6)
    # The transform is the processor saved with the model, pixel for pixel.
    saved = evaluation_image_processor(settings)
    assert saved.size == {"shortest_edge": 36} and saved.crop_size == {"height": 32, "width": 32}
    assert torch.equal(pixels, saved(image, return_tensors="pt")["pixel_values"][0])


# ---- decoding ----


@pytest.mark.parametrize(
    ("mode", "image_format"),
    [("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG")],
)
def test_every_stored_mode_decodes_to_rgb(mode, image_format):
    stored = encoded(Image.new(mode, (6, 5)), image_format)
    assert Image.open(io.BytesIO(stored["bytes"])).mode == mode
    image = decode_image(stored)
    assert image.mode == "RGB" and image.size == (6, 5)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_to_rgb_handles_the_modes_no_file_stores(mode: str) -> None:
    """32-bit integer and float images come from arrays, not files (the stored modes are decoded above)."""
    converted = to_rgb(Image.new(mode, (5, 4)))
    assert converted.mode == "RGB" and converted.size == (5, 4)


def test_to_rgb_composites_alpha_on_white_and_scales_sixteen_bit() -> None:
    transparent = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert np.asarray(to_rgb(transparent)).min() == 255
    sixteen_bit = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
    assert sixteen_bit.mode.startswith("I;16")
    assert np.asarray(to_rgb(sixteen_bit)).min() == 255
    with pytest.raises(ValueError, match=r"PIL\.Image\.Image"):
        to_rgb(np.zeros((2, 2)))


# ---- batches and undecodable files ----


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


def test_a_file_that_does_not_decode_is_skipped_counted_and_named(caplog):
    counter = SkipCounter()
    transform = make_batch_transform(
        build_eval_transform(TransformSettings(image_size=8, mean=(0, 0, 0), std=(1, 1, 1), crop_pct=1.0)),
        counter=counter,
    )
    batch = {
        "image": [{"bytes": image_bytes(1), "path": "good.png"}, {"bytes": CORRUPT_BYTES, "path": "broken.jpg"}],
        "label": [0, 1],
        "__url__": ["shard-0.tar", "shard-0.tar"],
    }
    with caplog.at_level(logging.WARNING, logger="smmix_hf"):
        rows = transform(batch)
    assert rows["pixel_values"][1] is None and counter.total() == 1
    assert "skipped image 'broken.jpg' in 'shard-0.tar'" in caplog.text
    collated = collate_image_batch([{"pixel_values": value, "labels": 0} for value in rows["pixel_values"]])
    assert collated["pixel_values"].shape == (1, 3, 8, 8)
    assert counter.since_last_report() == 1 and counter.since_last_report() == 0
    with pytest.raises(ValueError, match="none of the 1 images of a batch decodes"):
        collate_image_batch([{"pixel_values": None, "labels": 0}])


def test_strict_images_stop_at_the_first_bad_file_with_its_name():
    with pytest.raises(ImageDecodeError) as error:
        decode_image({"bytes": CORRUPT_BYTES, "path": "n01440764/broken.JPEG"}, strict=True)
    message = str(error.value)
    assert "\n" not in message and "cannot decode image 'n01440764/broken.JPEG'" in message
    assert "drop --strict_images" in message


def test_labels_outside_the_classes_name_the_file():
    transform = make_batch_transform(lambda image: torch.zeros(1), num_labels=3)
    with pytest.raises(ValueError, match=r"image 'x\.png' has label 7, outside the 3 classes"):
        transform({"image": [{"bytes": image_bytes(0), "path": "x.png"}], "label": [7]})
