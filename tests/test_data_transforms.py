"""The DeiT training transform through timm, the evaluation transform, decoding every PIL mode, and
undecodable images: skipped and counted, or fatal with --strict_images."""

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


def test_bad_augmentation_settings_are_one_line_errors():
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


@pytest.mark.parametrize(
    ("mode", "image_format"),
    [("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG")],
)
def test_every_stored_mode_decodes_to_rgb(mode, image_format):
    stored = encoded(Image.new(mode, (6, 5)), image_format)
    assert Image.open(io.BytesIO(stored["bytes"])).mode == mode
    image = decode_image(stored)
    assert image.mode == "RGB" and image.size == (6, 5)


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
