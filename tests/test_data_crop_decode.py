"""Decoding only what the crop needs: the crop boxes are timm's on the same seeds, the box decoded alone and the rows
down to the crop are Pillow's full decode's, bit for bit, and DCT-scaled crops stay within the error JPEG coding
itself makes (PSNR over 200 JPEGs)."""

from __future__ import annotations

import io
import math
import random
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from data_files import image_bytes, imagenet_like_image, imagenet_like_jpeg, jpeg_bytes
from PIL import Image
from timm.data.transforms import RandomResizedCropAndInterpolation

from smmix_hf.data import crop_decode
from smmix_hf.data.crop_decode import (
    dct_scale,
    decode_for_crop,
    decode_region,
    decode_rows,
    open_image,
    region_decoder_available,
    region_size,
)
from smmix_hf.data.transforms import TransformSettings, build_train_transform
from smmix_hf.data.uint8_transform import Uint8TrainTransform, crop_box

# The PSNR floor for DCT-scaled crops against timm's crop of the full decode. JPEG coding at quality 90 itself
# leaves these images at 32.2 dB from their originals (measured below); a decode shortcut must change the crop
# by less than that. Measured: 35.4 dB at worst, 38.7 median (112 px crops of 500x375 JPEGs).
PSNR_FLOOR_DB = 33.0
FIXTURES = Path(__file__).parent / "fixtures" / "jpeg"


def psnr(first: np.ndarray, second: np.ndarray) -> float:
    mse = float(((first.astype(np.float64) - second.astype(np.float64)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.mark.parametrize("size", [(500, 375), (375, 500), (1000, 90), (60, 900), (8, 8), (224, 224)])
def test_crop_boxes_are_timms_on_the_same_seeds(size: tuple[int, int]) -> None:
    """The same boxes as timm's RandomResizedCropAndInterpolation.get_params under random.seed, fallback included."""
    image = Image.new("RGB", size)
    for scale, ratio in (((0.08, 1.0), (3 / 4, 4 / 3)), ((0.5, 0.9), (0.2, 0.3))):
        for seed in range(300):
            random.seed(seed)
            expected = RandomResizedCropAndInterpolation.get_params(image, scale, ratio)
            assert crop_box(random.Random(seed), *size, scale, ratio) == expected


def test_rows_down_to_the_crop_equal_a_full_decode() -> None:
    data = imagenet_like_jpeg(np.random.default_rng(0))
    full = Image.open(io.BytesIO(data))
    full.load()
    for bottom in (1, 16, 17, 200, 374, 375):
        rows = decode_rows(open_image({"bytes": data, "path": None}), bottom)
        assert rows.size == (500, bottom)
        assert np.array_equal(np.asarray(rows), np.asarray(full)[:bottom])


def _libjpeg_turbo_headers_present() -> bool:
    """libjpeg-turbo's headers (the extension needs its partial decode), where setup.py's compiler looks."""
    folders = [Path(sysconfig.get_paths()["include"]), Path("/usr/include"), Path("/usr/local/include")]
    configs = [config for folder in folders for config in (*folder.glob("jconfig.h"), *folder.glob("*/jconfig.h"))]
    has_jpeglib = any((folder / "jpeglib.h").exists() for folder in folders)
    return has_jpeglib and any("LIBJPEG_TURBO_VERSION" in config.read_text(errors="replace") for config in configs)


needs_region_decoder = pytest.mark.skipif(
    not region_decoder_available(), reason="built without libjpeg's headers; test_the_region_decoder_is_built says"
)


def test_the_region_decoder_is_built_where_libjpeg_headers_are() -> None:
    """The extension is optional in setup.py: a build that failed would only warn. Where the headers exist (this
    project's CI), it must have been built, or the tests below would skip and the workers silently decode whole."""
    if _libjpeg_turbo_headers_present():
        assert region_decoder_available(), "jpeglib.h is installed but smmix_hf.data._jpeg_region was not built"


@needs_region_decoder
@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["4:4:4", "4:2:2", "4:2:0"])
@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_the_box_decoded_alone_equals_pillows_full_decode(subsampling: int, progressive: bool) -> None:
    """libjpeg-turbo's decode of the box alone (columns cropped, rows above skipped) against Pillow's full decode of
    the same file then cropped, bit for bit: odd image sizes, boxes at every edge and at iMCU column boundaries."""
    rng, draw = np.random.default_rng(subsampling), random.Random(subsampling + 10 * progressive)
    for _ in range(12):
        size = (draw.randint(17, 530), draw.randint(17, 400))
        buffer = io.BytesIO()
        imagenet_like_image(rng, size).save(
            buffer, "JPEG", quality=draw.choice([75, 90, 95]), subsampling=subsampling, progressive=progressive
        )
        data = buffer.getvalue()
        assert region_size(data) == size
        full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        width, height = size
        boxes = [(0, 0, height, width), (height - 1, width - 1, 1, 1), (0, width - 5, height, 5)]
        for _ in range(12):
            box_width, box_height = draw.randint(1, width), draw.randint(1, height)
            left, top = draw.randint(0, width - box_width), draw.randint(0, height - box_height)
            if draw.random() < 0.3:
                left -= left % 16
            boxes.append((top, left, box_height, box_width))
        for top, left, box_height, box_width in boxes:
            region = decode_region(data, (top, left, box_height, box_width))
            assert region is not None
            assert np.array_equal(region, full[top : top + box_height, left : left + box_width]), (size, left, top)


@needs_region_decoder
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_the_box_decoded_alone_at_a_dct_scale_equals_pillows_draft(scale: int) -> None:
    """At 1/2, 1/4 and 1/8 scale, the box of the scaled image against Pillow's ``Image.draft`` decode, cropped."""
    rng, draw = np.random.default_rng(scale), random.Random(scale)
    for subsampling in (0, 1, 2):
        size = (draw.randint(100, 1400), draw.randint(100, 1000))
        buffer = io.BytesIO()
        imagenet_like_image(rng, size).save(buffer, "JPEG", quality=90, subsampling=subsampling)
        data = buffer.getvalue()
        draft = Image.open(io.BytesIO(data))
        draft.draft("RGB", (size[0] // scale, size[1] // scale))
        full = np.asarray(draft)
        height, width = full.shape[:2]
        assert (width, height) == (-(-size[0] // scale), -(-size[1] // scale))
        for _ in range(8):
            box_width, box_height = draw.randint(1, width), draw.randint(1, height)
            left, top = draw.randint(0, width - box_width), draw.randint(0, height - box_height)
            region = decode_region(data, (top, left, box_height, box_width), scale)
            assert region is not None
            assert np.array_equal(region, full[top : top + box_height, left : left + box_width]), (size, left, top)


@needs_region_decoder
@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_a_4_1_0_jpeg_decodes_exactly_at_every_scale(scale: int) -> None:
    """4:1:0 chroma (4x2 luma blocks per chroma block; Pillow cannot write it, so the file was written once with
    libjpeg-turbo's ``cjpeg -sample 4x2,1x1,1x1``): narrow boxes at every scale against Pillow's decode. libjpeg-turbo
    2.1.5 crops its columns wrongly at 1/2 and 1/4 scale; those are decoded at full width (``_jpeg_region.c``)."""
    data = (FIXTURES / "subsampling_4_1_0.jpg").read_bytes()
    reference = Image.open(io.BytesIO(data))
    assert [layer[1:3] for layer in reference.layer] == [(4, 2), (1, 1), (1, 1)]
    if scale > 1:
        reference.draft("RGB", (reference.size[0] // scale, reference.size[1] // scale))
    full = np.asarray(reference.convert("RGB"))
    height, width = full.shape[:2]
    draw = random.Random(scale)
    for _ in range(40):
        box_width, box_height = draw.randint(1, max(1, width // 3)), draw.randint(1, height)
        left, top = draw.randint(0, width - box_width), draw.randint(0, height - box_height)
        region = decode_region(data, (top, left, box_height, box_width), scale)
        assert region is not None
        assert np.array_equal(region, full[top : top + box_height, left : left + box_width]), (left, top, box_width)


@needs_region_decoder
def test_files_the_region_decoder_does_not_take_go_to_pillow() -> None:
    """Grayscale, CMYK, PNG and corrupt data get no size (Pillow decodes them); a file cut short inside the box,
    a box outside the image and an empty box are refused, so the caller decodes with Pillow as before."""

    def encoded(mode: str, image_format: str = "JPEG") -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, (64, 48), 90).save(buffer, image_format)
        return buffer.getvalue()

    for other in (encoded("L"), encoded("CMYK"), encoded("RGB", "PNG"), b"\xff\xd8 not a JPEG"):
        assert region_size(other) is None
    with pytest.MonkeyPatch.context() as patch:  # a decompression bomb goes to Pillow, which refuses it
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48 // 2 - 1)
        assert region_size(encoded("RGB")) is None
        with pytest.raises(Image.DecompressionBombError):
            Uint8TrainTransform(TransformSettings(image_size=16, mean=(0.5,) * 3, std=(0.5,) * 3))(encoded("RGB"), 0)
    assert region_size(encoded("RGB")) == (64, 48)
    data = imagenet_like_jpeg(np.random.default_rng(3))
    assert decode_region(data[: len(data) // 2], (300, 0, 50, 100)) is None
    assert decode_region(data, (0, 450, 375, 51)) is None
    assert decode_region(data, (0, 0, 0, 10)) is None


@needs_region_decoder
def test_damaged_jpegs_are_refused_or_decoded_never_crash() -> None:
    """600 JPEGs with bytes overwritten or cut short (baseline, progressive, optimised Huffman tables), decoded at
    random boxes and scales: each call gives the box's shape or None. A crash in C would end the test process."""
    rng, draw = np.random.default_rng(6), random.Random(6)
    sources = []
    for subsampling, progressive in ((0, False), (2, False), (2, True), (1, True)):
        buffer = io.BytesIO()
        size = (draw.randint(20, 300), draw.randint(20, 300))
        imagenet_like_image(rng, size).save(buffer, "JPEG", subsampling=subsampling, progressive=progressive,
                                            optimize=progressive)  # fmt: skip
        sources.append(buffer.getvalue())
    decoded = 0
    for _ in range(600):
        data = bytearray(draw.choice(sources))
        for _ in range(draw.randint(1, 8)):
            data[draw.randrange(len(data))] = draw.randrange(256)
        if draw.random() < 0.3:
            data = data[: draw.randrange(len(data))]
        size = region_size(bytes(data))
        if size is None or not 0 < size[0] * size[1] < 4_000_000:
            continue
        scale = draw.choice([1, 1, 2, 8])
        width, height = -(-size[0] // scale), -(-size[1] // scale)
        box_width, box_height = draw.randint(1, width), draw.randint(1, height)
        box = (draw.randint(0, height - box_height), draw.randint(0, width - box_width), box_height, box_width)
        pixels = decode_region(bytes(data), box, scale)
        if pixels is not None:
            decoded += 1
            assert pixels.shape == (box_height, box_width, 3)
    assert decoded >= 50, "most damage leaves a decodable file"


@needs_region_decoder
@pytest.mark.parametrize("resize", ["torch", "pil"])
def test_the_transform_gives_the_same_pixels_with_and_without_the_extension(
    resize: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The worker's output for the same seeds is the same whether libjpeg-turbo decodes the box alone or Pillow
    decodes the image (the path without the extension), for JPEGs given as bytes, records and paths. At 48 px, the
    boxes of 96 px and more of these 220x160 images are DCT-scaled."""
    rng = np.random.default_rng(4)
    settings = TransformSettings(image_size=48, mean=(0.5,) * 3, std=(0.5,) * 3)
    transform = Uint8TrainTransform(settings, resize=resize)
    jpegs = [imagenet_like_jpeg(rng, (220, 160)) for _ in range(24)]
    scales = [dct_scale(box[3], box[2], 48) for box in (crop_box(random.Random(seed), 220, 160, transform.scale,
              transform.ratio) for seed in range(len(jpegs)))]  # fmt: skip
    assert 1 in scales and 2 in scales
    with_extension = [transform({"bytes": data, "path": None}, seed) for seed, data in enumerate(jpegs)]
    for seed, (data, expected) in enumerate(zip(jpegs, with_extension, strict=True)):
        (tmp_path / f"{seed}.jpg").write_bytes(data)
        assert torch.equal(transform(str(tmp_path / f"{seed}.jpg"), seed)["pixel_values"], expected["pixel_values"])
    monkeypatch.setattr(crop_decode, "_jpeg_region", None)
    assert not region_decoder_available()
    for seed, (data, expected) in enumerate(zip(jpegs, with_extension, strict=True)):
        got = transform(data, seed)
        assert torch.equal(got["pixel_values"], expected["pixel_values"]), seed
        assert torch.equal(got["erase_boxes"], expected["erase_boxes"]), seed


def test_images_that_are_not_plain_jpegs_are_decoded_whole() -> None:
    png = Image.open(io.BytesIO(image_bytes(7, size=(40, 30))))
    decoded, region = decode_for_crop(png, (3, 4, 20, 30), 8)
    assert decoded.size == (40, 30) and region == (4, 3, 34, 23)
    gray = io.BytesIO()
    Image.new("L", (64, 48), 90).save(gray, "JPEG")
    decoded, region = decode_for_crop(open_image(gray.getvalue()), (0, 0, 48, 64), 8)
    assert decoded.size == (64, 48) and region == (0, 0, 64, 48)


def test_dct_scaling_only_where_the_box_is_at_least_twice_the_output() -> None:
    assert dct_scale(447, 500, 224) == 1
    assert dct_scale(448, 448, 224) == 2
    assert dct_scale(900, 1000, 224) == 4
    assert dct_scale(4000, 3000, 224) == 8
    data = imagenet_like_jpeg(np.random.default_rng(1), (1000, 750))
    decoded, region = decode_for_crop(open_image(data), (100, 40, 600, 800), 224)
    assert decoded.size == (500, 375)  # libjpeg decoded at 1/2 scale
    assert region == (20.0, 50.0, 420.0, 350.0)


def test_dct_scaled_crops_stay_close_to_timms_over_200_jpegs() -> None:
    """PSNR of our 112 px crops (DCT scaling where the box is >= 224 px) against timm's crop of the full decode."""
    rng = np.random.default_rng(1)
    settings = TransformSettings(image_size=112, mean=(0.5,) * 3, std=(0.5,) * 3, horizontal_flip=False)
    ours, timm_crop = Uint8TrainTransform(settings, resize="pil"), build_train_transform(settings).transforms[0]
    assert isinstance(timm_crop, RandomResizedCropAndInterpolation)
    values, coding = [], []
    for seed in range(200):
        original = imagenet_like_image(rng)
        data = jpeg_bytes(original)
        got = ours({"bytes": data, "path": None}, seed)["pixel_values"].permute(1, 2, 0).numpy()
        full = Image.open(io.BytesIO(data))
        full.load()
        random.seed(seed)
        values.append(psnr(got, np.asarray(timm_crop(full))))
        coding.append(psnr(np.asarray(original), np.asarray(full)))
    scaled = [value for value in values if math.isfinite(value)]
    assert len(scaled) >= 100, "most 112 px crops of 500x375 images are wide enough for 1/2 scale"
    assert len(values) - len(scaled) >= 20, "the others are decoded exactly"
    assert min(scaled) >= PSNR_FLOOR_DB
    assert max(coding) < PSNR_FLOOR_DB, "the floor is stricter than JPEG quality 90's own error"


def test_torch_resize_equals_pillows_to_rounding() -> None:
    """``resize="torch"`` keeps the recipe's bicubic filter: Pillow's crop + resize to rounding (both round the
    intermediate pass to uint8 in their own way: a few levels at most, PSNR over 50 dB). 300x220 images at 128 px
    are never DCT-scaled."""
    rng = np.random.default_rng(2)
    settings = TransformSettings(image_size=128, mean=(0.5,) * 3, std=(0.5,) * 3, horizontal_flip=False)
    torch_resize = Uint8TrainTransform(settings, resize="torch")
    timm_crop = build_train_transform(settings).transforms[0]
    for seed in range(20):
        data = imagenet_like_jpeg(rng, (300, 220))
        got = torch_resize({"bytes": data, "path": None}, seed)["pixel_values"].permute(1, 2, 0).numpy()
        full = Image.open(io.BytesIO(data))
        full.load()
        random.seed(seed)
        expected = np.asarray(timm_crop(full))
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 4
        assert psnr(got, expected) > 50
    with pytest.raises(ValueError, match="resize must be"):
        Uint8TrainTransform(settings, resize="cv2")


def test_auto_resize_picks_pillows_only_under_pillow_simd(monkeypatch: pytest.MonkeyPatch) -> None:
    """``resize="auto"`` (the default) is torch's kernel under Pillow, Pillow's own under pillow-simd (faster)."""
    import importlib.metadata

    import PIL

    from smmix_hf.data import uint8_transform

    settings = TransformSettings(image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3)
    real_version = importlib.metadata.version

    def pillow(name: str) -> str:
        if name == "pillow-simd":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    def pillow_simd(name: str) -> str:
        return PIL.__version__ if name == "pillow-simd" else real_version(name)

    try:
        for version, torch_mode in ((pillow, "bicubic"), (pillow_simd, None)):
            monkeypatch.setattr(importlib.metadata, "version", version)
            uint8_transform.pillow_is_simd.cache_clear()
            assert Uint8TrainTransform(settings).torch_mode == torch_mode
            assert Uint8TrainTransform(settings, resize="torch").torch_mode == "bicubic"
    finally:
        uint8_transform.pillow_is_simd.cache_clear()
