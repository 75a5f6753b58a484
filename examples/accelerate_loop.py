"""SMMix in a plain PyTorch loop with ``accelerate``: one process or several, checkpoints, exact resume.

    python examples/accelerate_loop.py --output_dir out
    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml examples/accelerate_loop.py --output_dir out
    # after an interruption, the same command with --resume continues from the last checkpoint

It trains a small ViT on scikit-learn's bundled handwritten digits (no download) and writes the final weights to
``<output_dir>/final/model.safetensors``. A checkpoint (model, optimizer, scheduler, random states and SMMix's draws)
is saved after every epoch, so a resumed run ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader
from transformers import ViTConfig, ViTForImageClassification

from smmix_hf import MixSettings, SMMixTask
from smmix_hf.data import digits_tensors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32, help="per process; SMMix needs it even")
    parser.add_argument("--max_train_images", type=int, default=None, help="train on the first N digits only")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    parser.add_argument("--kill_at_step", type=int, default=None, help="kill the run (SIGKILL) at this step")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # A seedable sampler shuffles each epoch from (seed, epoch) alone, so a resumed epoch sees the same batches.
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(), dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True)
    )
    set_seed(0)
    model = ViTForImageClassification(
        ViTConfig(image_size=32, patch_size=4, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=128, num_labels=10)
    )  # fmt: skip
    train = digits_tensors("train")
    if args.max_train_images:
        train = torch.utils.data.Subset(train, range(args.max_train_images))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)

    # --8<-- [start:task]
    task = SMMixTask(model, MixSettings())  # before prepare(): the task hooks the model itself
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    task.wrap(model)  # forwards go through the DDP / FSDP wrapper
    accelerator.register_for_checkpointing(task.draws, task.clock)  # SMMix's draws and its count resume exactly
    # --8<-- [end:task]

    steps_per_epoch = len(loader)  # batches per process
    total_steps = args.epochs * steps_per_epoch
    task.set_run_length(total_steps=total_steps, steps_per_epoch=steps_per_epoch)  # the task counts its own calls
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    accelerator.register_for_checkpointing(scheduler)

    checkpoints = Path(args.output_dir) / "checkpoints"
    first_epoch = 0
    if args.resume and checkpoints.exists():
        last = max(checkpoints.iterdir(), key=lambda path: int(path.name.split("_")[-1]))
        accelerator.load_state(str(last))
        first_epoch = int(last.name.split("_")[-1])
        accelerator.print(f"resumed from {last} at epoch {first_epoch}")

    for epoch in range(first_epoch, args.epochs):
        model.train()
        loader.set_epoch(epoch)
        for index, (images, labels) in enumerate(loader):
            if epoch * steps_per_epoch + index == args.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            # --8<-- [start:step]
            result = task(images, labels)  # {"loss", "output", "loss_cls", "loss_fine", "loss_con"}
            accelerator.backward(result["loss"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            # --8<-- [end:step]
        accelerator.save_state(str(checkpoints / f"epoch_{epoch + 1}"))
        accelerator.print(f"epoch {epoch + 1}: loss {result['loss'].item():.4f}")

    accelerator.wait_for_everyone()
    accelerator.unwrap_model(model).save_pretrained(
        Path(args.output_dir) / "final", is_main_process=accelerator.is_main_process
    )
    accelerator.end_training()


if __name__ == "__main__":
    main()
