"""Decoding on the device (run here with device="cpu"): the batch equals the CPU worker path's for the same draws
to resize and IDCT rounding, RandAugment's device operations follow timm's Pillow ones, PNGs fall back to the
CPU path, and settings the device path cannot run are refused in one line."""

from __future__ import annotations

import io
import math
import statistics

import numpy as np
import pytest
import torch
from data_files import JpegRows, imagenet_like_image, imagenet_like_jpeg
from messages import one_line
from PIL import Image
from timm.data import auto_augment
from tiny_models import tiny_vit

from smmix_hf.data.arguments import DataArguments
from smmix_hf.data.device_augment import _NAMES, DEVICE_OPS, apply_rand_augment
from smmix_hf.data.device_decode import collate_device_batch, decode_on_device
from smmix_hf.data.device_draws import DeviceDecodeTransform
from smmix_hf.data.seeded import SeededSamples
from smmix_hf.data.seeded_rows import make_seeded_row_transform
from smmix_hf.data.transforms import DEIT_TRAIN_AUGMENTATION, TransformSettings, collate_image_batch
from smmix_hf.data.uint8_transform import Uint8TrainTransform
from smmix_hf.device_trainer import training_parts

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Crop, flip and resize: the CPU path resizes with torch's fixed-point uint8 kernel, the device path in float32
# and rounds; both decode with libjpeg-turbo here (nvJPEG's IDCT on a GPU differs by a level or so as well).
# Measured: 54.8 dB at worst over 16 DeiT crops of 500x375 JPEGs, 5 levels of 255 at most.
RESIZE_PSNR_FLOOR_DB, RESIZE_MAX_LEVELS = 50.0, 8
# With RandAugment on top, threshold operations (solarize, posterize, equalize, auto-contrast) turn a one-level
# resize difference into up to 255 at a few pixels. Measured: 33.4 dB at worst, 49 dB median over 16 images.
AUGMENTED_PSNR_FLOOR_DB, AUGMENTED_PSNR_MEDIAN_DB = 30.0, 45.0
# Device operations against timm's Pillow operations on the same image and argument (max levels of 255, PSNR):
# exact ones, rounding ones (grey weights), and the geometric ones (grid_sample's bicubic a=-0.75 against Pillow's
# a=-0.5, same source coordinates and fill). Measured: rotate 6 levels / 46.9 dB, shear and translate 5 / 48.7 dB.
EXACT_OPS = {"Equalize", "Invert", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd", "ContrastIncreasing"}
EXACT_OPS |= {"BrightnessIncreasing", "SharpnessIncreasing"}
ROUNDING_OPS = {"AutoContrast", "ColorIncreasing"}  # 1 level at most
GEOMETRIC_PSNR_FLOOR_DB, GEOMETRIC_MAX_LEVELS = 45.0, 8


def psnr(first: torch.Tensor, second: torch.Tensor) -> float:
    mse = float(((first.double() - second.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    rng = np.random.default_rng(5)
    return [imagenet_like_jpeg(rng) for _ in range(16)]


def settings_for(auto_augment_policy: str | None) -> TransformSettings:
    overrides = {"auto_augment": auto_augment_policy, "color_jitter": 0.0, "random_erasing": 0.5}
    return TransformSettings(image_size=224, mean=MEAN, std=STD, **{**DEIT_TRAIN_AUGMENTATION, **overrides})


def both_paths(settings: TransformSettings, images: list[bytes]) -> tuple[dict, dict]:
    """The CPU worker path's batch and the device path's (decoded with device="cpu"), for the same seeds."""
    cpu, device = Uint8TrainTransform(settings), DeviceDecodeTransform(settings)
    seeds = [13 * index + 2 for index in range(len(images))]
    cpu_rows = [
        {**cpu({"bytes": data, "path": None}, seed), "labels": 1} for data, seed in zip(images, seeds, strict=True)
    ]
    device_rows = [
        {**device({"bytes": data, "path": None}, seed), "labels": 1} for data, seed in zip(images, seeds, strict=True)
    ]
    return collate_image_batch(cpu_rows), decode_on_device(collate_device_batch(device_rows), "cpu")


def test_crop_flip_resize_on_the_device_equal_the_cpu_path(jpegs) -> None:
    cpu, device = both_paths(settings_for(None), jpegs)
    for key in ("labels", "erase_boxes", "erase_seed", "erase_mode", "pixel_mean", "pixel_std"):
        assert torch.equal(cpu[key], device[key]), key
    assert device["flips"][:, 0].any() and not device["flips"][:, 0].all()  # both sides of the flip drawn
    for ours, theirs in zip(device["pixel_values"], cpu["pixel_values"], strict=True):
        assert psnr(ours, theirs) >= RESIZE_PSNR_FLOOR_DB
        assert int((ours.int() - theirs.int()).abs().max()) <= RESIZE_MAX_LEVELS


def test_rand_augment_on_the_device_follows_the_cpu_path(jpegs) -> None:
    cpu, device = both_paths(settings_for("rand-m9-mstd0.5-inc1"), jpegs)
    assert torch.equal(cpu["erase_boxes"], device["erase_boxes"])  # the rng was drawn alike up to the erasing
    assert (device["augment"][:, :, 0] >= 0).any()
    values = [psnr(ours, theirs) for ours, theirs in zip(device["pixel_values"], cpu["pixel_values"], strict=True)]
    assert min(values) >= AUGMENTED_PSNR_FLOOR_DB
    assert statistics.median(values) >= AUGMENTED_PSNR_MEDIAN_DB


def timm_op(op: auto_augment.AugmentOp, image: Image.Image, args: tuple) -> Image.Image:
    try:
        return op.aug_fn(image, *args, **op.kwargs)
    except ValueError:  # Pillow 13 refuses posterize to 0 bits, which Pillow <= 12 made black
        return Image.new("RGB", image.size)


@pytest.mark.parametrize("magnitude", [3.0, 9.0, 10.0])
def test_device_operations_follow_timms(jpegs, magnitude) -> None:
    hparams = {"translate_const": 100, "img_mean": (124, 116, 104), "interpolation": Image.BICUBIC}
    policy = auto_augment.rand_augment_transform("rand-m9-mstd0.5-inc1", hparams)
    image = Image.open(io.BytesIO(jpegs[0])).convert("RGB").resize((224, 224))
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()
    fill = torch.tensor(hparams["img_mean"], dtype=torch.float32)
    for op in policy.ops:
        for sign in (1.0, -1.0):
            args = op.level_fn(magnitude, op.hparams) if op.level_fn is not None else ()
            if op.name.startswith(("Rotate", "Shear", "Translate")):
                args = (sign * abs(args[0]),)
            expected = torch.from_numpy(np.array(timm_op(op, image, args))).permute(2, 0, 1)
            drawn = [(DEVICE_OPS.index(_NAMES[op.name]), float(args[0]) if args else 0.0)]
            got = apply_rand_augment(pixels, drawn, fill)
            levels = int((got.int() - expected.int()).abs().max())
            if op.name in EXACT_OPS:
                assert levels == 0, op.name
            elif op.name in ROUNDING_OPS:
                assert levels <= 1, op.name
            else:
                assert levels <= GEOMETRIC_MAX_LEVELS and psnr(got, expected) >= GEOMETRIC_PSNR_FLOOR_DB, op.name


def test_a_png_falls_back_to_the_cpu_path(jpegs) -> None:
    settings = settings_for("rand-m9-mstd0.5-inc1")
    buffer = io.BytesIO()
    imagenet_like_image(np.random.default_rng(1)).save(buffer, "PNG")
    png = buffer.getvalue()
    row = DeviceDecodeTransform(settings)({"bytes": png, "path": None}, 7)
    assert row["jpeg"].numel() == 0
    assert torch.equal(
        row["pixel_values"], Uint8TrainTransform(settings)({"bytes": png, "path": None}, 7)["pixel_values"]
    )
    jpeg_row = DeviceDecodeTransform(settings)({"bytes": jpegs[0], "path": None}, 8)
    batch = decode_on_device(collate_device_batch([{**row, "labels": 0}, {**jpeg_row, "labels": 0}]), "cpu")
    assert torch.equal(batch["pixel_values"][0], row["pixel_values"])  # kept as the worker decoded it
    assert batch["pixel_values"][1].float().std() > 10  # the JPEG row was decoded here


@pytest.mark.parametrize(
    ("policy", "jitter", "streaming", "expected"),
    [
        ("augmix-m5-w4-d2", 0.0, False, "RandAugment on the device, not AugMixAugment"),
        (None, 0.4, False, "not ColorJitter"),
        ("rand-m9-mstd0.5-inc1", 0.0, True, "not --streaming"),
    ],
)
def test_settings_the_device_cannot_run_are_refused_in_one_line(policy, jitter, streaming, expected) -> None:
    settings = TransformSettings(
        image_size=224,
        mean=MEAN,
        std=STD,
        **{**DEIT_TRAIN_AUGMENTATION, "auto_augment": policy, "color_jitter": jitter},
    )
    data_args = DataArguments(decode_on_device=True, streaming=streaming)
    with pytest.raises(ValueError) as error:
        training_parts(settings, data_args, do_train=True)
    assert expected in one_line(error)


def test_without_the_flag_or_cuda_the_workers_decode(jpegs) -> None:
    settings = settings_for("rand-m9-mstd0.5-inc1")
    transform, collator, _ = training_parts(settings, DataArguments(), do_train=True)
    assert type(transform) is Uint8TrainTransform and collator is collate_image_batch
    if not torch.cuda.is_available():
        transform, _, _ = training_parts(settings, DataArguments(decode_on_device=True), do_train=True)
        assert type(transform) is Uint8TrainTransform


def test_the_device_decode_trainer_decodes_each_batch_before_the_step(make_config, monkeypatch, jpegs) -> None:
    """``DeviceDecodeTrainer`` (here on the CPU) trains from batches of JPEG bytes: every batch is decoded by
    ``decode_on_device`` on the training device before ``compute_loss`` finishes and mixes it."""
    import smmix_hf.device_trainer as device_trainer

    decoded = []

    def spy(batch, device):
        out = decode_on_device(batch, device)
        decoded.append((str(device), out["pixel_values"].dtype, tuple(out["pixel_values"].shape)))
        return out

    monkeypatch.setattr(device_trainer, "decode_on_device", spy)
    settings = TransformSettings(image_size=32, mean=MEAN, std=STD, **{**DEIT_TRAIN_AUGMENTATION, "color_jitter": 0.0})
    rows = SeededSamples(
        JpegRows(jpegs[:8]), seed=0, transform=make_seeded_row_transform(DeviceDecodeTransform(settings))
    )
    trainer = device_trainer.DeviceDecodeTrainer(
        model=tiny_vit(num_labels=2),
        args=make_config(max_steps=2, per_device_train_batch_size=4, logging_steps=1, mixup_switch_prob=1.0),
        train_dataset=rows,
        data_collator=collate_device_batch,
    )
    trainer.train()
    assert decoded == [("cpu", torch.uint8, (4, 3, 32, 32))] * 2
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
