"""How often bf16 autocast changes SMMix's window choices (Eq. 7-8) compared with an fp32 motivated forward.

The motivated forward runs inside the training step's autocast. The probe forms the last block's
attention in fp32 from the captured query and key projections, but those projections (and every block
before them) ran in bf16. This script scores the same images both ways and counts, over every window
size of the official draw, how many max (source) and min (target) windows move.

Two models: a freshly initialised one (near-uniform attention, the worst case for ties) and the same
model after a short plain fit on the bundled digits (attention that prefers some tokens)::

    python bench/bf16_windows.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from transformers import ViTConfig, ViTForImageClassification

from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.data.digits import load_digits_dataset
from smmix_hf.draws import region_size_range
from smmix_hf.mixing import select_windows


def digits_tensor(count: int, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    split = load_digits_dataset(seed=0)["train"].select(range(count))
    images = torch.stack(
        [torch.tensor(np.asarray(image.convert("L")), dtype=torch.float32).flatten() for image in split["image"]]
    )
    side = split[0]["image"].size[0]
    images = images.view(count, 1, side, side).repeat(1, 3, 1, 1) / 127.5 - 1
    return F.interpolate(images, size=image_size, mode="bilinear"), torch.tensor(split["label"])


def scores(model: torch.nn.Module, images: torch.Tensor, bf16: bool) -> torch.Tensor:
    probe = SMMixProbe(model)
    model.eval()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with torch.no_grad(), autocast, probe.reading_attention(tuple(images.shape[-2:])):
        model(pixel_values=images)
    probe.remove()
    return probe.scores


def changed_share(model: torch.nn.Module, images: torch.Tensor) -> tuple[float, int]:
    exact, low = scores(model, images, False), scores(model, images, True)
    grid = tuple(exact.shape[1:])
    changed = total = 0
    for size in sorted(set(region_size_range(grid, (0.25, 0.75)))):
        for largest in (True, False):
            a, b = select_windows(exact, size, largest), select_windows(low, size, largest)
            changed += int((a != b).any(dim=1).sum())
            total += a.shape[0]
    return changed / total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--fit-steps", type=int, default=150)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=args.image_size,
        patch_size=args.patch_size,
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=256,
        num_labels=10,
    )
    model = ViTForImageClassification(config)
    images, labels = digits_tensor(args.images, args.image_size)
    share, total = changed_share(model, images)
    print(f"initialised model: {share:.2%} of {total} window choices change under bf16")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(args.fit_steps):
        batch = torch.randint(0, args.images, (64,))
        optimizer.zero_grad()
        F.cross_entropy(model(pixel_values=images[batch]).logits, labels[batch]).backward()
        optimizer.step()
    share, total = changed_share(model, images)
    print(f"after {args.fit_steps} fit steps: {share:.2%} of {total} window choices change under bf16")


if __name__ == "__main__":
    main()
