"""Top-1 / top-2 accuracy on mixed images: the metric of the paper's Fig. 5a.

A model that has learnt to see both objects of a mixed image should rank both labels first. For each
mixed image with source label ``y_src`` and target label ``y_tgt`` (pairs with the same label are
skipped, since their label set has one element):

* **top-1**: the prediction is one of ``{y_src, y_tgt}``;
* **top-2**: the two highest-scoring classes are exactly ``{y_src, y_tgt}``.

The paper reports 48.3% top-2 for DeiT-S trained with SMMix against 23.8% with CutMix on ImageNet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from smmix_hf.analyze.mixing import BatchMixer
from smmix_hf.data.transforms import collate_image_batch

__all__ = ["MixedAccuracy", "mixed_accuracy", "score_mixed_batch"]


@dataclass(frozen=True)
class MixedAccuracy:
    """Fig. 5a for one model on images mixed by ``method``; ``images`` mixed images were scored."""

    method: str
    top1: float
    top2: float
    images: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_mixed_batch(
    logits: torch.Tensor, labels: torch.Tensor, source_index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample top-1 hit, top-2 hit and validity (source and target labels differ), all bool ``[B]``."""
    target_label, source_label = labels, labels[source_index]
    top2 = logits.topk(2, dim=-1).indices
    first, second = top2[:, 0], top2[:, 1]
    top1_hit = (first == source_label) | (first == target_label)
    top2_hit = top1_hit & ((second == source_label) | (second == target_label))
    return top1_hit, top2_hit, source_label != target_label


@torch.no_grad()
def mixed_accuracy(
    model: nn.Module,
    dataset: Dataset,
    method: str,
    *,
    batch_size: int = 64,
    seed: int = 0,
    scorer: nn.Module | None = None,
    region_scale: tuple[float, float] = (0.25, 0.75),
    cutmix_alpha: float = 1.0,
    collate_fn: Callable[[list[Any]], dict[str, torch.Tensor]] = collate_image_batch,
) -> MixedAccuracy:
    """Fig. 5a accuracy of ``model`` on ``dataset`` (rows of ``pixel_values`` and ``labels``) mixed by ``method``.

    The dataset is shuffled with ``seed`` so that pairs are random; sample ``i`` of a batch is the
    target of sample ``B-1-i``'s window, so every image is the target of one mixed image (a batch of
    odd size leaves its last image out). SMMix windows are placed by
    ``model``'s own attention unless another ``scorer`` is given. The model runs in eval mode.
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 so images can be paired; got {batch_size}.")
    mixer = BatchMixer(model, method, scorer=scorer, region_scale=region_scale, cutmix_alpha=cutmix_alpha, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate_fn, generator=generator)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    top1 = top2 = scored = 0
    try:
        for batch in loader:
            count = batch["labels"].shape[0] // 2 * 2
            if count == 0:
                continue
            images, labels = batch["pixel_values"][:count].to(device), batch["labels"][:count].to(device)
            example = mixer(images, labels)
            logits = model(pixel_values=example.mixed).logits
            top1_hit, top2_hit, valid = score_mixed_batch(logits, labels, example.source_index)
            top1 += int((top1_hit & valid).sum())
            top2 += int((top2_hit & valid).sum())
            scored += int(valid.sum())
    finally:
        model.train(was_training)
    if scored == 0:
        raise ValueError("no mixed image had two different labels; use more images or more than one class.")
    return MixedAccuracy(method=method, top1=top1 / scored, top2=top2 / scored, images=scored)
