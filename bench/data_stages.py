"""Where a data worker's time goes, stage by stage: timm's DeiT training transform against ours, in one thread.

For each ImageNet-like JPEG (500×375, quality 90) both paths run back to back, every stage timed on its own:

- **timm** (what torchvision's ``ImageFolder`` runs, plus the per-sample seeding of the process-wide generators that
  exact resumes needed before):
  seeding, decode, random resized crop (bicubic), flip, RandAugment, ``ToTensor``, ``Normalize``, random erasing;
- **ours** (:class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform`): seeding its own generators, header and
  crop box, crop-only decode, crop + resize, flip, RandAugment, uint8 tensor, erase boxes; then normalising and
  erasing on the device (:func:`~smmix_hf.data.device_batch.finish_pixels`, here on the CPU, per batch of 32, shared
  out per image; a GPU does it in the training process, not in a worker). ``ours`` decodes the box alone with the
  package's libjpeg-turbo extension and resizes with torch's antialiased uint8 kernel (the defaults); ``ours,
  Pillow decode`` decodes with Pillow (rows down to the crop, as without the extension); ``ours, Pillow resize``
  resizes with Pillow's, as timm does.

It prints milliseconds per image for each stage (the median over rounds of the mean over images), the totals, their
ratio and the load average, so a table measured on a shared machine says how shared it was::

    python bench/data_stages.py                     # 100 images, 5 rounds
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' ImageNet-like JPEGs

SOURCE_SIZE = (500, 375)
TIMM, OURS, OURS_PILLOW_DECODE, OURS_PILLOW_RESIZE = "timm", "ours", "ours, Pillow decode", "ours, Pillow resize"
DEVICE = "normalise + erase on the device"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the device finishing")
    return parser.parse_args(argv)


class Clock:
    """Adds the time since the previous tick to a named stage."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals
        self.last = time.perf_counter()

    def tick(self, stage: str) -> None:
        now = time.perf_counter()
        self.totals[stage] += now - self.last
        self.last = now


def timm_stages(transform, data: bytes, seed: int, clock: Clock) -> None:
    from smmix_hf.data.seeded import seeded_random

    crop, flip, augment, to_tensor, normalize, erase = transform.transforms
    clock.tick("other")
    with seeded_random(seed):
        clock.tick("seeding")
        image = Image.open(io.BytesIO(data))
        image.load()
        clock.tick("decode")
        image = crop(image)
        clock.tick("crop + resize")
        image = flip(image)
        clock.tick("flip")
        image = augment(image)
        clock.tick("RandAugment")
        tensor = to_tensor(image)
        clock.tick("to tensor")
        tensor = normalize(tensor)
        clock.tick("normalise")
        erase(tensor)
        clock.tick("erase")
    clock.tick("seeding")


def our_stages(ours, data: bytes, seed: int, clock: Clock, region: bool) -> dict:
    """``Uint8TrainTransform.__call__`` stage by stage; ``region=False`` decodes with Pillow (no extension)."""
    from smmix_hf.data.crop_decode import decode_box, decode_for_crop, open_image, region_size
    from smmix_hf.data.uint8_transform import crop_box, erase_boxes

    clock.tick("other")
    rng = random.Random(seed)
    torch_generator = torch.Generator()
    torch_generator.manual_seed(seed)
    clock.tick("seeding")
    if region:
        size = region_size(data)
        box = crop_box(rng, *size, ours.scale, ours.ratio)
        clock.tick("header + box")
        pixels, crop = decode_box(data, size, box, ours.side)
        clock.tick("decode")
        image = ours._resize(pixels) if crop is None else ours._crop_and_resize(Image.fromarray(pixels), crop)
    else:
        image = open_image({"bytes": data, "path": None})
        box = crop_box(rng, *image.size, ours.scale, ours.ratio)
        clock.tick("header + box")
        decoded, crop = decode_for_crop(image, box, ours.side)
        clock.tick("decode")
        image = ours._crop_and_resize(decoded, crop)
    clock.tick("crop + resize")
    for probability, flip in ours.flips:
        if torch.rand(1, generator=torch_generator).item() < probability:
            image = image.transpose(flip)
    clock.tick("flip")
    image = ours._augment(image, seed, rng, torch_generator)
    clock.tick("RandAugment")
    pixels = torch.from_numpy(np.stack([np.asarray(plane) for plane in image.split()]))
    clock.tick("to tensor")
    boxes = np.zeros((ours.count, 4), dtype=np.int32)
    for row, erase in enumerate(erase_boxes(rng, ours.erasing, ours.side)):
        boxes[row] = erase
    clock.tick("erase")
    return {
        "pixel_values": pixels,
        "erase_boxes": torch.from_numpy(boxes),
        "erase_seed": seed,
        "erase_mode": ours.erase_mode,
        "pixel_mean": ours.settings.mean,
        "pixel_std": ours.settings.std,
        "labels": 0,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    from data_files import imagenet_like_jpeg

    from bench.data_throughput import deit_settings
    from smmix_hf.data.crop_decode import region_decoder_available
    from smmix_hf.data.device_batch import finish_pixels
    from smmix_hf.data.transforms import build_train_transform, collate_image_batch
    from smmix_hf.data.uint8_transform import Uint8TrainTransform

    args = parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    jpegs = [imagenet_like_jpeg(rng, SOURCE_SIZE) for _ in range(args.images)]
    settings = deit_settings(args.image_size)
    timm_transform = build_train_transform(settings)
    region = region_decoder_available()  # without the extension, only the Pillow decode is measured
    ours = {
        OURS: (Uint8TrainTransform(settings), region),
        OURS_PILLOW_DECODE: (Uint8TrainTransform(settings), False),
        OURS_PILLOW_RESIZE: (Uint8TrainTransform(settings, resize="pil"), region),
    }
    if not region:
        print("the region decoder was not built (setup.py): every column of ours decodes with Pillow")
    load_before = os.getloadavg()
    rounds: dict[str, list[dict[str, float]]] = {TIMM: [], **{path: [] for path in ours}}
    for round_index in range(args.rounds + 1):  # the first round warms up and is not counted
        totals: dict[str, dict[str, float]] = {path: defaultdict(float) for path in rounds}
        rows: dict[str, list[dict]] = {path: [] for path in ours}
        for index, data in enumerate(jpegs):
            seed = round_index * 100_000 + index
            timm_stages(timm_transform, data, seed, Clock(totals[TIMM]))
            for path, (transform, region) in ours.items():
                rows[path].append(our_stages(transform, data, seed, Clock(totals[path]), region))
                if len(rows[path]) == args.batch_size or index == len(jpegs) - 1:
                    start = time.perf_counter()
                    finish_pixels(collate_image_batch(rows[path]))
                    totals[path][DEVICE] += time.perf_counter() - start
                    rows[path] = []
        if round_index:
            for path in rounds:
                rounds[path].append({stage: 1e3 * value / len(jpegs) for stage, value in totals[path].items()})
    load_after = os.getloadavg()
    table = {
        path: {stage: statistics.median(row.get(stage, 0.0) for row in rows) for stage in rows[0] if stage != "other"}
        for path, rows in rounds.items()
    }
    stages = list(dict.fromkeys(stage for values in table.values() for stage in values if stage != DEVICE))
    workers = {path: sum(value for stage, value in values.items() if stage != DEVICE) for path, values in table.items()}
    print(
        f"{args.images} JPEGs of {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} -> {args.image_size} px, DeiT transform, "
        f"one thread, ms per image (median of {args.rounds} rounds); load average before "
        + ", ".join(f"{value:.1f}" for value in load_before)
        + ", after "
        + ", ".join(f"{value:.1f}" for value in load_after)
        + f", {os.cpu_count()} CPUs"
    )
    print("| stage | " + " | ".join(f"{path} ms | share" for path in table) + " |")
    print("|---|" + "---|---|" * len(table))
    for stage in stages:
        cells = []
        for path, values in table.items():
            value = values.get(stage)
            cells += ["-", "-"] if value is None else [f"{value:.2f}", f"{100 * value / workers[path]:.0f}%"]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    print("| **a worker, all stages** | " + " | ".join(f"**{workers[path]:.2f}** | 100%" for path in table) + " |")
    print(
        f"| {DEVICE} (CPU here; not a worker's) | - | - | "
        + " | ".join(f"{table[path][DEVICE]:.2f} | -" for path in ours)
        + " |"
    )
    for path in ours:
        print(f"{TIMM} / {path} = {workers[TIMM] / workers[path]:.2f} (a worker's time per image, one thread)")
    return table


if __name__ == "__main__":
    main()
