"""SMMix in a timm-style training loop: a timm model, timm's optimizer and scheduler, the task driven as timm's
``train.py`` drives a ``timm.task.TrainingTask``.

    python examples/timm_loop.py
    torchrun --nproc_per_node 2 examples/timm_loop.py          # DDP over gloo on CPU, NCCL on GPUs
    python examples/timm_loop.py --motivator                   # a frozen motivator (Tab. 9), kept out of DDP
    python examples/timm_loop.py --ema_motivator               # an EMA of the model places the windows

It trains a small DeiT (``deit_tiny_patch16_224``'s architecture at 32 px) on scikit-learn's bundled digits (no
download) and prints the loss terms of the last step and the held-out top-1.
"""

from __future__ import annotations

import argparse
import copy
import os

import timm
import torch
import torch.distributed as dist
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, DistributedSampler

from smmix_hf import MixSettings, SMMixTask
from smmix_hf.data import digits_tensors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=32, help="per process; SMMix needs it even")
    parser.add_argument("--max_train_images", type=int, default=None, help="train on the first N digits only")
    parser.add_argument("--motivator", action="store_true", help="let a frozen copy of the model place the windows")
    parser.add_argument(
        "--ema_motivator", action="store_true", help="let timm's ModelEmaV3 of the model place the windows"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)

    model = timm.create_model(
        "deit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32, patch_size=4, depth=4
    ).to(device)
    # A trained motivator would come from a checkpoint (Tab. 9); a frozen copy shows where it lives. An EMA of the
    # model is a momentum teacher: a motivator that follows the model, updated after each optimizer step.
    ema = ModelEmaV3(model, decay=0.99) if args.ema_motivator else None
    motivator = copy.deepcopy(model) if args.motivator else (ema.module if ema is not None else None)

    train = digits_tensors("train")
    if args.max_train_images:
        train = torch.utils.data.Subset(train, range(args.max_train_images))
    sampler = DistributedSampler(train, seed=0, drop_last=True) if distributed else None
    loader = DataLoader(train, args.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True)

    # --8<-- [start:task]
    # The task counts its own calls: the warm-up reads the share of total_steps done, mix_off_epoch the epoch.
    task = SMMixTask(
        model, MixSettings(), motivator=motivator, total_steps=args.epochs * len(loader), steps_per_epoch=len(loader)
    )
    if distributed:
        task.prepare_distributed(device_ids=[device.index] if device.type == "cuda" else None)
    # --8<-- [end:task]

    optimizer = create_optimizer_v2(model, opt="adamw", lr=1e-3, weight_decay=0.05)
    scheduler, num_epochs = create_scheduler_v2(
        optimizer, sched="cosine", num_epochs=args.epochs, warmup_epochs=1, updates_per_epoch=len(loader)
    )

    for epoch in range(num_epochs):
        task.train()
        if sampler is not None:
            sampler.set_epoch(epoch)
        for index, (images, labels) in enumerate(loader):
            step = epoch * len(loader) + index
            images, labels = images.to(device), labels.to(device)
            # --8<-- [start:step]
            result = task(images, labels)
            optimizer.zero_grad()
            result["loss"].backward()
            optimizer.step()
            scheduler.step_update(num_updates=step + 1)
            if ema is not None:
                ema.update(model, step=step)
            # --8<-- [end:step]
        scheduler.step(epoch + 1)

    terms = {name: round(value.item(), 4) for name, value in result.items() if name.startswith("loss")}
    task.eval()
    validation = digits_tensors("validation")
    with torch.no_grad():
        evaluation = task(validation.tensors[0].to(device), validation.tensors[1].to(device))
    top1 = (evaluation["output"].argmax(-1).cpu() == validation.tensors[1]).float().mean().item()
    in_step = True
    if distributed:  # DDP averaged every gradient, so every process holds the same weights
        weights = torch.cat([parameter.detach().flatten() for parameter in model.parameters()])
        copies = [torch.empty_like(weights) for _ in range(dist.get_world_size())]
        dist.all_gather(copies, weights)
        in_step = all(torch.equal(copies[0], other) for other in copies)
    if rank == 0:
        wrapped = type(task.trainable_module).__name__
        motivator_class = type(task.motivator.model).__name__ if task.motivator is not None else None
        print(f"trained: {wrapped}; motivator: {motivator_class}; last step {terms}; top-1 {top1:.3f}")
        print(f"processes {dist.get_world_size() if distributed else 1}, same weights on all: {in_step}")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
