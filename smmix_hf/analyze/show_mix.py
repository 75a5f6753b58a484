"""The per-sample PNG grid of :mod:`smmix_hf.visualize` for a trained model and a labelled set, offline."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from smmix_hf.analyze.mixing import BatchMixer
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.visualize import WINDOW_LEGEND, render_mix_grid

__all__ = ["show_mix"]


@torch.no_grad()
def show_mix(
    model: nn.Module,
    dataset: Dataset,
    method: str,
    *,
    count: int = 8,
    seed: int = 0,
    scorer: nn.Module | None = None,
    region_scale: tuple[float, float] = (0.25, 0.75),
    mean: Any = None,
    std: Any = None,
    panel: int = 128,
) -> Image.Image:
    """A grid of ``count`` images of ``dataset`` mixed by ``method`` (pairs ``i`` / ``2·count-1-i``).

    The images are drawn at random with ``seed``; ``mean`` / ``std`` undo the input normalisation.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1; got {count}.")
    if len(dataset) < 2 * count:
        raise ValueError(f"show-mix pairs {2 * count} images but the dataset has {len(dataset)}; lower --num.")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: 2 * count].tolist()
    batch = collate_image_batch([dataset[index] for index in order])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        mixer = BatchMixer(model, method, scorer=scorer, region_scale=region_scale, seed=seed)
        example = mixer(batch["pixel_values"].to(device), batch["labels"].to(device))
    finally:
        model.train(was_training)
    rows = example.rows(count, class_names=getattr(model.config, "id2label", None), mean=mean, std=std)
    name = getattr(model.config, "name_or_path", "") or type(model).__name__
    return render_mix_grid(rows, panel=panel, title=f"{name}: {method}   {WINDOW_LEGEND}")
