"""Images per second per DataLoader worker for decode + DeiT training transform: ours against torchvision and timm.

Writes JPEGs shaped like ImageNet's (500×375, quality 90; the tests' ``imagenet_like_jpeg``) into an image
folder, and the same JPEG bytes into WebDataset tars and parquet shards. Then it times, interleaved
and repeated, the DataLoader of each pipeline with 1 and then 2 workers:

- ``torchvision``: ``torchvision.datasets.ImageFolder`` + the timm DeiT transform (the baseline);
- ``timm``: timm's own loader (``timm.data.create_loader`` over ``ImageDataset``, the same DeiT transform), as its
  workers deliver: uint8 batches from its fast collate, which its ``PrefetchLoader`` then normalises and erases on
  the GPU; ``timm-prefetch-cpu``: the same with the ``PrefetchLoader`` doing that on this CPU, in the timing loop;
- ``ours-folder``: ``--train_dir`` as the command line loads it (map-style ``imagefolder``, undecoded image
  column, :class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform`: crop-only decode, generators of its own
  seeded per sample so that a resumed run repeats the augmentation), as its workers deliver: uint8 batches with
  what ``finish_pixels`` needs to normalise and erase them on the GPU; ``ours-folder-finish-cpu``: the same with
  ``finish_pixels`` run on this CPU, in the timing loop; ``ours-folder-float``: the same split with the previous
  path (timm's transform to a normalised float tensor, the process-wide generators seeded and restored around
  every sample);
- ``ours-folder-stream``, ``ours-webdataset``, ``ours-parquet``: ``--streaming`` over the folder, the
  tars and the parquet shards, with ``Uint8TrainTransform``.

The headline ratios compare what the workers deliver, per worker: on a GPU host the normalising and erasing of a
uint8 batch are a few kernels on the GPU, not work for the CPU cores the workers share. The ``-cpu`` pipelines show
what a CPU-only run pays for them (and, with as many workers as cores, how the training process then competes with
the workers).

Every pipeline produces 224 px crops with the same recipe (RandAugment ``rand-m9-mstd0.5-inc1``, bicubic random
resized crop, flip, random erasing 0.25). A pass is timed from its start to its last batch, after an untimed pass
has started the persistent workers; each pipeline's rate is the median over the repeats, and its ratio to
torchvision and to timm is the median of the ratios of passes run back to back, pooled over both worker counts, so
that load from other processes on the machine cancels out. The load average before and after is printed with them.
Streams are read in stored order (``--shuffle_buffer_size 0``), so that what a pipeline does once per pass is left
out: ``datasets``' parquet streaming sleeps 5 s when a pass ends (``datasets.config.
SLEEP_TIME_ON_THREADS_SHUTDOWN``, a guard against an Arrow shutdown bug)::

    python bench/data_throughput.py                 # 384 images, 5 repeats, 1 and 2 workers
    python bench/data_throughput.py --pipelines torchvision,timm,ours-folder --repeats 9
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' ImageNet-like JPEGs

SOURCE_SIZE = (500, 375)
BASELINE = "torchvision"
TIMM = "timm"
OURS = "ours-folder"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=384, help="JPEGs written (and read per pass)")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--shards", type=int, default=8, help="WebDataset tars and parquet files")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated DataLoader worker counts, each run in turn (0: in-process)"
    )
    parser.add_argument("--pipelines", default=None, help="comma-separated pipeline names (default: all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per pipeline (median reported)")
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--data-dir", default=None, help="where to write the data (default: a temporary dir)")
    return parser.parse_args(argv)


def write_data(root: Path, args: argparse.Namespace) -> tuple[Path, list[Path], list[Path], float]:
    """The image folder, the WebDataset tars, the parquet shards and the mean JPEG size in KiB."""
    from data_files import imagenet_like_jpeg

    rng = np.random.default_rng(0)
    folder = root / "train"
    records = []
    for index in range(args.images):
        label = index % args.classes
        data = imagenet_like_jpeg(rng, SOURCE_SIZE, args.quality)
        path = folder / f"class{label:03d}" / f"img{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        records.append((f"img{index:06d}", data, label))
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


def timm_loader(folder: Path, args: argparse.Namespace, prefetch_on_cpu: bool = False) -> object:
    """timm's loader: ``ImageDataset`` + ``create_loader`` (fast collate); its workers' DataLoader, or with
    ``prefetch_on_cpu`` its ``PrefetchLoader`` normalising and erasing on this CPU."""
    from timm.data import ImageDataset, create_loader

    from smmix_hf.data.posterize import keep_zero_bit_posterize

    settings = deit_settings(args.image_size)
    loader = create_loader(
        ImageDataset(str(folder)),
        input_size=(3, args.image_size, args.image_size),
        batch_size=args.batch_size,
        is_training=True,
        re_prob=settings.random_erasing,
        re_mode=settings.random_erasing_mode,
        re_count=settings.random_erasing_count,
        scale=settings.random_resized_crop_scale,
        ratio=settings.random_resized_crop_ratio,
        color_jitter=settings.color_jitter,
        auto_augment=settings.auto_augment,
        interpolation=settings.interpolation,
        mean=settings.mean,
        std=settings.std,
        num_workers=args.workers,
        device=torch.device("cpu"),
        persistent_workers=args.workers > 0,
    )
    keep_zero_bit_posterize(loader.loader.dataset.transform)  # Pillow 13 refuses 0-bit posterize (see posterize.py)
    return loader if prefetch_on_cpu else loader.loader


class FinishedOnCpu:
    """A loader of ours whose uint8 batches ``finish_pixels`` normalises and erases on this CPU as they arrive."""

    def __init__(self, loader: torch.utils.data.DataLoader) -> None:
        self.loader = loader

    def __iter__(self):
        from smmix_hf.data.device_batch import finish_pixels

        for batch in self.loader:
            batch["pixel_values"] = finish_pixels(batch)
            yield batch


def our_loader(args: argparse.Namespace, uint8: bool = True, **sources: object) -> torch.utils.data.DataLoader:
    """The command line's data path: load_image_dataset + prepare_datasets + collate_image_batch.

    ``uint8=False`` gives the previous path: timm's transform to float, the global generators seeded per sample.
    """
    from smmix_hf.cli.arguments import DataArguments
    from smmix_hf.config import SMMixConfig
    from smmix_hf.data.pipeline import prepare_datasets
    from smmix_hf.data.sources import load_image_dataset
    from smmix_hf.data.transforms import build_eval_transform, build_train_transform, collate_image_batch
    from smmix_hf.data.uint8_transform import Uint8TrainTransform

    data_args = DataArguments(**sources, num_train_examples=args.images, shuffle_buffer_size=0)
    training_args = SMMixConfig(
        output_dir=tempfile.mkdtemp(), use_cpu=True, report_to="none", dataloader_num_workers=args.workers
    )
    splits = load_image_dataset(data_args, seed=0)
    settings = deit_settings(args.image_size)
    label2id = {str(index): index for index in range(args.classes)}
    prepared = prepare_datasets(
        splits,
        Uint8TrainTransform(settings) if uint8 else build_train_transform(settings),
        build_eval_transform(settings),
        data_args,
        training_args,
        label2id=label2id,
    )
    dataset = prepared.train
    shuffle = not isinstance(dataset, torch.utils.data.IterableDataset)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=shuffle,
        collate_fn=collate_image_batch,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
    )


def time_pass(loader: object) -> float:
    """Images per second over a full pass, from asking for the first batch to the arrival of the last.

    Workers are persistent and already started by an untimed pass. The pass is timed from its start because timm's
    ``PrefetchLoader`` loads batch k + 1 before it hands over batch k.
    """
    images, start = 0, time.perf_counter()
    for batch in loader:
        images += len(batch[1] if isinstance(batch, (list, tuple)) else batch["labels"])
    return images / (time.perf_counter() - start)


def time_pipelines(pipelines: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Interleaved passes: one untimed pass each, then ``repeats`` rounds of one timed pass per pipeline."""
    loaders = {name: build() for name, build in pipelines.items()}
    for loader in loaders.values():
        time_pass(loader)
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(repeats):
        for name, loader in loaders.items():
            rates[name].append(time_pass(loader))
    return rates


def paired(rates: dict[int, dict[str, list[float]]], name: str, reference: str) -> float:
    """The median over both worker counts of the ratios of back-to-back passes of ``name`` and ``reference``."""
    return statistics.median(
        ours / base for by_name in rates.values() for ours, base in zip(by_name[name], by_name[reference], strict=True)
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    worker_counts = [int(count) for count in str(args.workers).split(",")]
    load_before = os.getloadavg()
    rates: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.data_dir or scratch)
        folder, tars, parquets, mean_kib = write_data(root, args)
        validation = {"validation_dir": str(folder)}
        for workers in worker_counts:
            args.workers = workers
            pipelines: dict[str, Callable[[], object]] = {
                BASELINE: lambda: baseline_loader(folder, args),
                TIMM: lambda: timm_loader(folder, args),
                OURS: lambda: our_loader(args, train_dir=str(folder), **validation),
                "timm-prefetch-cpu": lambda: timm_loader(folder, args, prefetch_on_cpu=True),
                "ours-folder-finish-cpu": lambda: FinishedOnCpu(our_loader(args, train_dir=str(folder), **validation)),
                "ours-folder-float": lambda: our_loader(args, uint8=False, train_dir=str(folder), **validation),
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
            if args.pipelines:
                chosen = {BASELINE, TIMM, OURS, *args.pipelines.split(",")}
                pipelines = {name: build for name, build in pipelines.items() if name in chosen}
            rates[workers] = time_pipelines(pipelines, args.repeats)
    load_after = os.getloadavg()
    print(
        f"{args.images} JPEGs of {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} (mean {mean_kib:.0f} KiB) -> {args.image_size} px, "
        f"DeiT transform, batch {args.batch_size}, median of {args.repeats} passes, images/s per worker, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs"
    )
    print(
        "load average (1, 5, 15 min) before "
        + ", ".join(f"{value:.1f}" for value in load_before)
        + "; after "
        + ", ".join(f"{value:.1f}" for value in load_after)
    )
    names = list(next(iter(rates.values())))
    header = "".join(f"{f'{count} worker' + ('s' if count != 1 else ''):>12}" for count in rates)
    print(f"{'pipeline':<20}{header}   vs torchvision   vs timm")
    medians: dict[str, float] = {}
    for name in names:
        per_worker = [statistics.median(rates[count][name]) / max(1, count) for count in rates]
        medians[name] = per_worker[0]
        columns = "".join(f"{value:12.1f}" for value in per_worker)
        print(f"{name:<20}{columns}   x{paired(rates, name, BASELINE):<14.2f} x{paired(rates, name, TIMM):.2f}")
    print(
        f"ours/torchvision = {paired(rates, OURS, BASELINE):.2f}, ours/timm = {paired(rates, OURS, TIMM):.2f} "
        f"(median of paired ratios over {', '.join(map(str, rates))} workers)"
    )
    return medians


if __name__ == "__main__":
    main()
