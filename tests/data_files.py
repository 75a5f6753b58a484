"""Small image datasets written to disk in the layouts users store data in: image folders, WebDataset tars,
parquet shards. Every image carries its id in its pixels (red = id % 256, green = id // 256), so tests can
tell which images a pipeline delivered."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image

Record = tuple[str, bytes, int]

CORRUPT_BYTES = b"\xff\xd8\xff\xe0 this is not a JPEG"


def image_bytes(sample_id: int, size: tuple[int, int] = (40, 30), image_format: str = "PNG") -> bytes:
    """A flat image whose colour encodes ``sample_id`` (PNG keeps it exact)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (sample_id % 256, sample_id // 256, 128)).save(buffer, image_format)
    return buffer.getvalue()


def records(count: int, num_classes: int, corrupt: tuple[int, ...] = ()) -> list[Record]:
    """``(key, encoded image, label)`` for ids 0..count-1; ids in ``corrupt`` get bytes that do not decode."""
    return [
        (f"s{index:05d}", CORRUPT_BYTES if index in corrupt else image_bytes(index), index % num_classes)
        for index in range(count)
    ]


def write_image_folder(root: Path, rows: list[Record]) -> Path:
    """``root/class<kkk>/<key>.png`` (class folders zero-padded, so that their sorted order is the label order)."""
    for key, data, label in rows:
        path = root / f"class{label:03d}" / f"{key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_webdataset(root: Path, rows: list[Record], shards: int, prefix: str = "train") -> list[Path]:
    """``<prefix>-<k>.tar`` shards holding ``<key>.png`` and ``<key>.cls`` per sample, dealt round-robin."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(shards):
        path = root / f"{prefix}-{shard:04d}.tar"
        with tarfile.open(path, "w") as archive:
            for key, data, label in rows[shard::shards]:
                for name, payload in ((f"{key}.png", data), (f"{key}.cls", str(label).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    archive.addfile(info, io.BytesIO(payload))
        paths.append(path)
    return paths


def write_parquet(root: Path, rows: list[Record], shards: int, num_classes: int, prefix: str = "train") -> list[Path]:
    """``<prefix>-<k>.parquet`` shards as ``datasets`` writes them (an ``Image`` and a ``ClassLabel`` column)."""
    root.mkdir(parents=True, exist_ok=True)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[f"class{k:03d}" for k in range(num_classes)])}
    )
    paths = []
    for shard in range(shards):
        part = rows[shard::shards]
        table = {
            "image": [{"bytes": data, "path": f"{key}.png"} for key, data, _ in part],
            "label": [label for _, _, label in part],
        }
        path = root / f"{prefix}-{shard:04d}.parquet"
        datasets.Dataset.from_dict(table, features=features).to_parquet(str(path))
        paths.append(path)
    return paths


def sample_id(pixels) -> int:
    """The id encoded in an image tensor normalised with mean 0 and std 1 (``ToTensor`` scale)."""
    red, green = (round(float(pixels[channel].mean()) * 255) for channel in (0, 1))
    return red + 256 * green


def single_intra_op_thread() -> Iterator[None]:
    """For an autouse fixture: one torch thread while a test trains. On a loaded 2-core machine a second
    intra-op thread makes an AdamW step of PVT-S about 40x slower (0.15 s against 6.5 s, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def imagenet_like_image(rng: np.random.Generator, size: tuple[int, int] = (500, 375)) -> Image.Image:
    """An image shaped like an ImageNet photograph: a smooth colour field with edges, fine texture and noise."""
    width, height = size
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    detail = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    pixels = 0.7 * np.asarray(coarse, dtype=np.float32) + 0.3 * np.asarray(detail, dtype=np.float32)
    pixels += rng.normal(0.0, 16.0, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def imagenet_like_jpeg(rng: np.random.Generator, size: tuple[int, int] = (500, 375), quality: int = 90) -> bytes:
    """:func:`imagenet_like_image` as a JPEG (quality 90 by default, about 106 KiB at 500x375)."""
    return jpeg_bytes(imagenet_like_image(rng, size), quality)


class JpegRows(torch.utils.data.Dataset):
    """Rows as an undecoded image column gives them: ``{"image": {"bytes", "path": None}, "label": index % 2}``."""

    def __init__(self, jpegs: list[bytes]) -> None:
        self.jpegs = jpegs

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, index: int) -> dict:
        return {"image": {"bytes": self.jpegs[index], "path": None}, "label": index % 2}
