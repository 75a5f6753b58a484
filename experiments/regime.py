"""The regimes of the studies: canvas data, the ViT, the training recipe and the warm start.

Two local-object regimes (:data:`REGIMES`), both the bundled digits placed at random on a noisy canvas
(:mod:`experiments.canvas`), which records every digit's box:

* ``canvas32``: 10-16 px digits on a 32 px canvas (noise 0.25), 2 renderings of the 1,437 training digits; a
  4-layer ViT of width 96 with patch 4 (8 × 8 tokens); window sides drawn as ⌊δ·g⌋, δ ~ U(0.25, 0.75);
* ``canvas48``: 16-24 px digits on a 48 px canvas (noise 0.1), 3 renderings; the demo's ViT (width 128, patch 8:
  6 × 6 tokens); window sides drawn by the official sampling.

Both train with the demo's recipe (:data:`RECIPE`: AdamW, weight decay 0.05, cosine, 50 warm-up steps, batch 64,
label smoothing 0.1, Mixup at p = 0.5 in turn with CutMix / SMMix, random resized crop 0.8-1). The warm start
(:func:`pretrain`) is the canvas32 ViT trained 15 epochs without mixing on the full-frame 32 px digits.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, set_seed

from experiments.canvas import load_canvas_digits
from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data import (
    build_eval_transform,
    build_train_transform,
    collate_image_batch,
    load_digits_dataset,
    make_batch_transform,
    settings_from_image_processor,
)
from smmix_hf.draws import region_size_range

HeldOut = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class Regime:
    """One local-object setting: canvas, digit sizes, ViT shape, training renderings, crop, window sampling.

    ``sides`` are the SMMix window sides the hit rates average over, each equally likely: the official sampling
    draws them uniformly from ``⌊0.25·g⌋ … ⌊0.75·g⌋``; the continuous one floors ``δ·g`` for δ ~ U(0.25, 0.75),
    which for the 8 × 8 grid makes 2, 3, 4, 5 equally likely.
    """

    name: str
    canvas: int
    patch: int
    scale: tuple[float, float]
    noise: float
    width: int
    renderings: int
    crop_scale_min: float
    region_sampling: str

    @property
    def grid(self) -> int:
        return self.canvas // self.patch

    @property
    def sides(self) -> tuple[int, ...]:
        if self.region_sampling == "continuous":
            return tuple(sorted({max(1, math.floor(share * self.grid)) for share in (0.25, 0.375, 0.5, 0.625)}))
        return tuple(side for side, _ in region_size_range((self.grid, self.grid), (0.25, 0.75)))


REGIMES = {
    "canvas32": Regime("canvas32", 32, 4, (0.3125, 0.5), 0.25, 96, 2, 0.8, "continuous"),
    "canvas48": Regime("canvas48", 48, 8, (1 / 3, 1 / 2), 0.1, 128, 3, 0.8, "official"),
}

# The demo's training recipe, shared by every run (learning rate, epochs and seed are per run).
RECIPE: dict[str, Any] = dict(
    per_device_train_batch_size=64,
    per_device_eval_batch_size=256,
    weight_decay=0.05,
    lr_scheduler_type="cosine",
    warmup_steps=50,
    mixup_switch_prob=0.5,
    eval_strategy="no",
    save_strategy="no",
    logging_strategy="epoch",
    report_to="none",
    disable_tqdm=True,
    dataloader_num_workers=0,
)


def quiet(threads: int = 1) -> None:
    """One torch thread (runs go side by side, one per core) and no progress bars or library chatter."""
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()


def load_splits(
    regime: Regime, max_train: int | None = None, max_eval: int | None = None
) -> tuple[datasets.DatasetDict, ViTImageProcessor, HeldOut]:
    """Canvas splits with the package's transforms, and the held-out tensors with their digit boxes.

    ``max_train`` / ``max_eval`` keep only the first images of a split (for quick checks).
    """
    splits = load_canvas_digits(
        canvas_size=regime.canvas, scale=regime.scale, noise=regime.noise, seed=0, renderings=regime.renderings
    )
    for name, limit in (("train", max_train), ("validation", max_eval)):
        if limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    size = {"height": regime.canvas, "width": regime.canvas}
    processor = ViTImageProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    settings = settings_from_image_processor(
        processor, horizontal_flip=False, crop_pct=1.0, random_resized_crop_scale=(regime.crop_scale_min, 1.0)
    )
    eval_transform = build_eval_transform(settings)
    validation = splits["validation"]
    held_out = {
        "pixel_values": torch.stack([eval_transform(image) for image in validation["image"]]),
        "labels": torch.tensor(validation["label"]),
        "boxes": torch.tensor(validation["box"]),
    }
    splits["train"].set_transform(make_batch_transform(build_train_transform(settings)))
    splits["validation"].set_transform(make_batch_transform(eval_transform))
    return splits, processor, held_out


def build_model(regime: Regime, width: int | None = None, layers: int = 4) -> ViTForImageClassification:
    """The regime's ViT from scratch: ``layers`` blocks, 4 heads, MLP twice the width, 10 classes."""
    width = regime.width if width is None else width
    config = ViTConfig(
        image_size=regime.canvas,
        patch_size=regime.patch,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * width,
        num_labels=10,
        id2label={index: str(index) for index in range(10)},
        label2id={str(index): index for index in range(10)},
    )
    return ViTForImageClassification(config)


def pretrain(path: Path, epochs: int = 15, device: str = "cpu") -> None:
    """The warm start: the canvas32 ViT trained without mixing on the full-frame 32 px digits (seed 0)."""
    splits = load_digits_dataset(image_size=32, seed=0)
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    settings = settings_from_image_processor(
        processor, horizontal_flip=False, crop_pct=1.0, random_resized_crop_scale=(0.6, 1.0)
    )
    splits["train"].set_transform(make_batch_transform(build_train_transform(settings)))
    splits["validation"].set_transform(make_batch_transform(build_eval_transform(settings)))
    set_seed(0)
    args = SMMixConfig(
        output_dir=f"{path}-trainer",
        mix_method="none",
        num_train_epochs=epochs,
        learning_rate=2e-3,
        seed=0,
        use_cpu=device == "cpu",
        **RECIPE,
    )
    trainer = SMMixTrainer(
        model=build_model(REGIMES["canvas32"]),
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=collate_image_batch,
        processing_class=processor,
    )
    trainer.train()
    print(f"warm start: full-frame digits top-1 {trainer.evaluate()['eval_top1']:.3f}", flush=True)
    trainer.save_model(str(path))
