"""Images per second per DataLoader worker for decode + DeiT training transform: ours against torchvision.

Writes JPEGs shaped like ImageNet's (500×375, quality 90, smooth content with texture) into an image
folder, and the same JPEG bytes into WebDataset tars and parquet shards. Then it times, interleaved
and repeated, one DataLoader worker per pipeline:

- ``torchvision``: ``torchvision.datasets.ImageFolder`` + the timm DeiT transform (the baseline);
- ``ours-folder``: ``--train_dir`` as the command line loads it (map-style ``imagefolder``, undecoded
  image column, our decode + the same timm transform through ``set_transform``, per-sample seeding so that
  a resumed run repeats the augmentation); ``ours-folder-unseeded``: the same without that seeding;
- ``ours-folder-stream``, ``ours-webdataset``, ``ours-parquet``: ``--streaming`` over the folder, the
  tars and the parquet shards.

Every pipeline produces 224 px crops with the same transform (RandAugment ``rand-m9-mstd0.5-inc1``,
bicubic random resized crop, flip, random erasing 0.25) and batches them with its own collate
function. A pass is timed from its first batch to its last, so worker start-up is not counted; the
median over the repeats is reported, with each pipeline's ratio to the baseline (the median of the
ratios of passes run back to back, so that load from other processes on the machine cancels out).
A pass ends at its last batch, and streams are read in stored order (``--shuffle_buffer_size 0``), so
that what a pipeline does once per pass is left out: ``datasets``' parquet streaming sleeps 5 s when a
pass ends (``datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN``, a guard against an Arrow shutdown bug);
with a shuffle buffer that pause falls inside the pass, while the buffer is drained::

    python bench/data_throughput.py                 # 384 images, 5 repeats, 1 worker
    python bench/data_throughput.py --images 2000 --workers 4
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SOURCE_SIZE = (500, 375)
BASELINE = "torchvision"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=384, help="JPEGs written (and read per pass)")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--shards", type=int, default=8, help="WebDataset tars and parquet files")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers per pipeline (0: in-process)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per pipeline (median reported)")
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--data-dir", default=None, help="where to write the data (default: a temporary dir)")
    return parser.parse_args(argv)


def natural_image(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A smooth colour field with edges and fine texture, which JPEG compresses like a photograph."""
    width, height = size
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    detail = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    pixels = 0.7 * np.asarray(coarse, dtype=np.float32) + 0.3 * np.asarray(detail, dtype=np.float32)
    pixels += rng.normal(0.0, 16.0, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_data(root: Path, args: argparse.Namespace) -> tuple[Path, list[Path], list[Path], float]:
    """The image folder, the WebDataset tars, the parquet shards and the mean JPEG size in KiB."""
    rng = np.random.default_rng(0)
    folder = root / "train"
    records = []
    for index in range(args.images):
        label = index % args.classes
        buffer = io.BytesIO()
        natural_image(rng, SOURCE_SIZE).save(buffer, "JPEG", quality=args.quality)
        path = folder / f"class{label:03d}" / f"img{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        records.append((f"img{index:06d}", buffer.getvalue(), label))
    tars, parquets = [], []
    for shard in range(args.shards):
        part = records[shard :: args.shards]
        tar_path = root / "wds" / f"train-{shard:04d}.tar"
        tar_path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tar_path, "w") as archive:
            for key, data, label in part:
                for name, payload in ((f"{key}.jpg", data), (f"{key}.cls", str(label).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    archive.addfile(info, io.BytesIO(payload))
        tars.append(tar_path)
        parquet_path = root / "parquet" / f"train-{shard:04d}.parquet"
        parquet_path.parent.mkdir(parents=True, exist_ok=True)
        images = [{"bytes": data, "path": f"{key}.jpg"} for key, data, _ in part]
        table = pa.table({"image": images, "label": [label for _, _, label in part]})
        pq.write_table(table, parquet_path, row_group_size=64)
        parquets.append(parquet_path)
    mean_kib = statistics.mean(len(data) for _, data, _ in records) / 1024
    return folder, tars, parquets, mean_kib


def deit_settings(image_size: int):
    from smmix_hf.data.transforms import DEIT_TRAIN_AUGMENTATION, TransformSettings

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return TransformSettings(image_size=image_size, mean=mean, std=std, **DEIT_TRAIN_AUGMENTATION)


def baseline_loader(folder: Path, args: argparse.Namespace) -> torch.utils.data.DataLoader:
    """torchvision's ImageFolder with the same DeiT transform (timm's, through ``build_train_transform``)."""
    from torchvision.datasets import ImageFolder

    from smmix_hf.data.transforms import build_train_transform

    transform = build_train_transform(deit_settings(args.image_size))
    dataset = ImageFolder(str(folder), transform=transform)
    return torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, persistent_workers=args.workers > 0
    )


def our_loader(args: argparse.Namespace, seeded: bool = True, **sources: object) -> torch.utils.data.DataLoader:
    """The command line's data path: load_image_dataset + prepare_datasets + collate_image_batch.

    ``seeded=False`` leaves out the per-sample seeding of a map-style split (``SeededSamples``).
    """
    from smmix_hf.cli.arguments import DataArguments
    from smmix_hf.config import SMMixConfig
    from smmix_hf.data.pipeline import prepare_datasets
    from smmix_hf.data.sources import load_image_dataset
    from smmix_hf.data.transforms import build_eval_transform, build_train_transform, collate_image_batch

    data_args = DataArguments(**sources, num_train_examples=args.images, shuffle_buffer_size=0)
    training_args = SMMixConfig(
        output_dir=tempfile.mkdtemp(), use_cpu=True, report_to="none", dataloader_num_workers=args.workers
    )
    splits = load_image_dataset(data_args, seed=0)
    settings = deit_settings(args.image_size)
    label2id = {str(index): index for index in range(args.classes)}
    prepared = prepare_datasets(
        splits,
        build_train_transform(settings),
        build_eval_transform(settings),
        data_args,
        training_args,
        label2id=label2id,
    )
    dataset = prepared.train
    if not seeded and not isinstance(dataset, datasets.IterableDataset):
        dataset = dataset.dataset
    shuffle = not isinstance(dataset, torch.utils.data.IterableDataset)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=shuffle,
        collate_fn=collate_image_batch,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
    )


def time_pass(loader: torch.utils.data.DataLoader) -> float:
    """Images per second from the arrival of the first batch of a full pass to the arrival of its last."""
    batches = iter(loader)
    next(batches)
    images, start = 0, time.perf_counter()
    last = start
    for batch in batches:
        images += len(batch[1] if isinstance(batch, list) else batch["labels"])
        last = time.perf_counter()
    return images / (last - start)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.data_dir or scratch)
        folder, tars, parquets, mean_kib = write_data(root, args)
        validation = {"validation_dir": str(folder)}
        pipelines: dict[str, Callable[[], torch.utils.data.DataLoader]] = {
            BASELINE: lambda: baseline_loader(folder, args),
            "ours-folder": lambda: our_loader(args, train_dir=str(folder), **validation),
            "ours-folder-unseeded": lambda: our_loader(args, seeded=False, train_dir=str(folder), **validation),
            "ours-folder-stream": lambda: our_loader(args, train_dir=str(folder), streaming=True, **validation),
            "ours-webdataset": lambda: our_loader(
                args,
                train_files=",".join(map(str, tars)),
                validation_files=str(tars[0]),
                streaming=True,
                image_column_name="jpg",
                label_column_name="cls",
            ),
            "ours-parquet": lambda: our_loader(
                args, train_files=",".join(map(str, parquets)), validation_files=str(parquets[0]), streaming=True
            ),
        }
        loaders = {name: build() for name, build in pipelines.items()}
        for loader in loaders.values():
            time_pass(loader)
        rates: dict[str, list[float]] = {name: [] for name in loaders}
        for _ in range(args.repeats):
            for name, loader in loaders.items():
                rates[name].append(time_pass(loader))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    paired = {
        name: statistics.median(ours / base for ours, base in zip(values, rates[BASELINE], strict=True))
        for name, values in rates.items()
    }
    per = f"per worker ({args.workers} worker{'s' if args.workers != 1 else ''})" if args.workers else "in-process"
    print(
        f"{args.images} JPEGs of {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} (mean {mean_kib:.0f} KiB) -> {args.image_size} px, "
        f"DeiT transform, batch {args.batch_size}, median of {args.repeats} passes, images/s {per}, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs"
    )
    divisor = max(1, args.workers)
    for name, median in medians.items():
        spread = f"{min(rates[name]) / divisor:.1f}-{max(rates[name]) / divisor:.1f}"
        print(f"{name:<20} {median / divisor:8.1f} images/s  (range {spread})  x{paired[name]:.2f}")
    print(f"ours/torchvision = {paired['ours-folder']:.2f}")
    return medians


if __name__ == "__main__":
    main()
