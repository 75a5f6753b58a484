"""uint8 from the workers, normalisation and random erasing on the device: the batch the model sees equals timm's
CPU transform (ToTensor, Normalize, RandomErasing) for the same draws; it does not depend on the worker count."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from data_files import JpegRows, imagenet_like_jpeg
from PIL import Image
from timm.data.random_erasing import RandomErasing

from smmix_hf.data.device_batch import finish_pixels
from smmix_hf.data.seeded import SeededSamples, seeded_random
from smmix_hf.data.seeded_rows import make_seeded_row_transform
from smmix_hf.data.transforms import (
    DEIT_TRAIN_AUGMENTATION,
    TransformSettings,
    build_train_transform,
    collate_image_batch,
    evaluation_image_processor,
    make_batch_transform,
)
from smmix_hf.data.uint8_eval import Uint8EvalTransform
from smmix_hf.data.uint8_transform import Uint8TrainTransform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    rng = np.random.default_rng(3)
    return [imagenet_like_jpeg(rng) for _ in range(8)]


def timm_reference(settings: TransformSettings, data: bytes, seed: int, ops_named: str | None) -> torch.Tensor:
    """timm's DeiT training transform on the full decode, under the sample's seed; RandomErasing's noise from
    ``torch.manual_seed(seed)``. ``ops_named`` keeps RandAugment to that one operation (its choice among several
    draws from NumPy in timm and from a generator of its own here; everything else draws alike)."""
    transform = build_train_transform(settings)
    if ops_named is not None:
        transform.transforms[2].ops = [op for op in transform.transforms[2].ops if op.name == ops_named]
    image = Image.open(io.BytesIO(data))
    image.load()
    with seeded_random(seed):
        for step in transform.transforms:
            if isinstance(step, RandomErasing):
                torch.manual_seed(seed)
            image = step(image)
    return image


def ours(settings: TransformSettings, jpegs: list[bytes], seeds: list[int], ops_named: str | None) -> torch.Tensor:
    transform = Uint8TrainTransform(settings, resize="pil")  # timm's resize, for pixels equal to timm's
    if ops_named is not None:
        transform.policy[0].ops = [op for op in transform.policy[0].ops if op.name == ops_named]
    pairs = zip(jpegs, seeds, strict=True)
    rows = [{**transform({"bytes": data, "path": None}, seed), "labels": 0} for data, seed in pairs]
    batch = collate_image_batch(rows)
    assert batch["pixel_values"].dtype == torch.uint8
    return finish_pixels(batch)


@pytest.mark.parametrize(
    ("overrides", "ops_named"),
    [
        ({"random_erasing": 1.0}, "Rotate"),
        ({"random_erasing": 1.0, "random_erasing_count": 3}, "ShearX"),
        ({"random_erasing": 1.0, "random_erasing_mode": "rand"}, "SolarizeAdd"),
        ({"random_erasing": 1.0, "random_erasing_mode": "const"}, "TranslateXRel"),
        ({}, "PosterizeIncreasing"),
        ({"auto_augment": None, "color_jitter": 0.4, "random_erasing": 0.5}, None),
    ],
)
def test_device_batch_equals_timms_cpu_transform(jpegs, overrides, ops_named) -> None:
    settings = TransformSettings(image_size=224, mean=MEAN, std=STD, **{**DEIT_TRAIN_AUGMENTATION, **overrides})
    seeds = [11 * index + 5 for index in range(len(jpegs))]
    got = ours(settings, jpegs, seeds, ops_named)
    pairs = zip(jpegs, seeds, strict=True)
    expected = torch.stack([timm_reference(settings, data, seed, ops_named) for data, seed in pairs])
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_randaugment_picks_every_operation_alike() -> None:
    """Our choice of operations (a generator of our own) has timm's distribution: uniform, with replacement."""
    settings = TransformSettings(image_size=16, mean=MEAN, std=STD, **DEIT_TRAIN_AUGMENTATION)
    transform = Uint8TrainTransform(settings)
    randaugment = transform.policy[0]
    picked: list[str] = []
    for op in randaugment.ops:  # record the choice instead of running the operation
        op.aug_fn = lambda image, *args, _name=op.name, **kwargs: picked.append(_name) or image
        op.prob = 1.0
    image = Image.new("RGB", (16, 16)).tobytes()
    for seed in range(3000):
        transform(Image.frombytes("RGB", (16, 16), image), seed)
    counts = np.array([picked.count(op.name) for op in randaugment.ops])
    expected = len(picked) / len(randaugment.ops)
    assert len(picked) == 2 * 3000
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 36.1, counts  # 14 degrees of freedom, p = 0.001


def test_float_batches_pass_through() -> None:
    batch = {"pixel_values": torch.randn(2, 3, 4, 4), "labels": torch.tensor([0, 1])}
    assert finish_pixels(batch) is batch["pixel_values"]


def test_the_batch_does_not_depend_on_the_worker_count(jpegs) -> None:
    augmentation = {**DEIT_TRAIN_AUGMENTATION, "random_erasing": 0.5}
    settings = TransformSettings(image_size=64, mean=MEAN, std=STD, **augmentation)
    dataset = SeededSamples(JpegRows(jpegs), seed=3, transform=make_seeded_row_transform(Uint8TrainTransform(settings)))
    batches = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate_image_batch)
        batches.append(torch.cat([finish_pixels(batch) for batch in loader]))
    torch.testing.assert_close(batches[0], batches[1], rtol=0, atol=0)
    dataset.set_epoch(1)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate_image_batch)
    assert not torch.equal(torch.cat([finish_pixels(batch) for batch in loader]), batches[0])


def test_uint8_evaluation_finishes_to_the_saved_processors_pixels(jpegs) -> None:
    """Evaluation rows in uint8, finished on the device, equal what the saved image processor (pipeline()) gives."""
    settings = TransformSettings(image_size=96, mean=MEAN, std=STD)
    rows = {"image": [{"bytes": data, "path": None} for data in jpegs[:4]], "label": [0, 1, 0, 1]}
    batch = collate_image_batch(_rows_of(make_batch_transform(Uint8EvalTransform(settings))(rows)))
    assert batch["pixel_values"].dtype == torch.uint8
    processor = evaluation_image_processor(settings)
    expected = torch.cat(
        [processor(Image.open(io.BytesIO(data)), return_tensors="pt")["pixel_values"] for data in jpegs[:4]]
    )
    torch.testing.assert_close(finish_pixels(batch), expected, rtol=0, atol=1e-6)
    assert batch["labels"].tolist() == [0, 1, 0, 1]


def _rows_of(columns: dict[str, list]) -> list[dict]:
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
