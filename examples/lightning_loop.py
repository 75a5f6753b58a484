"""SMMix in a Lightning ``training_step``: the ``LightningModule`` holds an ``SMMixTask`` and returns its loss.

    python examples/lightning_loop.py                     # one CPU process
    python examples/lightning_loop.py --devices 2         # DDP, 2 processes (Lightning starts them itself)

It trains a small ViT on scikit-learn's bundled digits (no download) and prints the held-out top-1. Lightning's
checkpoints carry SMMix's draws: they are part of the task's ``state_dict``.
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import ViTConfig, ViTForImageClassification

from smmix_hf import MixSettings, SMMixTask
from smmix_hf.data import digits_tensors


# --8<-- [start:module]
class SMMixClassifier(L.LightningModule):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.task = SMMixTask(model, MixSettings())

    def on_fit_start(self) -> None:  # the run's length, once: the task counts its own steps from here
        self.task.set_run_length(
            total_steps=self.trainer.estimated_stepping_batches,
            steps_per_epoch=self.trainer.num_training_batches,
            accumulation_steps=self.trainer.accumulate_grad_batches,
        )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        result = self.task(*batch)
        self.log_dict({name: value for name, value in result.items() if name.startswith("loss")}, sync_dist=True)
        return result["loss"]

    # --8<-- [end:module]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        result = self.task(*batch)  # eval mode: cross-entropy on the clean images
        top1 = (result["output"].argmax(-1) == batch[1]).float().mean()
        self.log_dict({"val_loss": result["loss"], "val_top1": top1}, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.task.model.parameters(), lr=1e-3, weight_decay=0.05)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32, help="per process; SMMix needs it even")
    parser.add_argument("--max_train_images", type=int, default=None, help="train on the first N digits only")
    parser.add_argument("--output_dir", default="lightning_logs")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    L.seed_everything(0)
    model = ViTForImageClassification(
        ViTConfig(image_size=32, patch_size=4, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=128, num_labels=10)
    )  # fmt: skip
    train = digits_tensors("train")
    if args.max_train_images:
        train = torch.utils.data.Subset(train, range(args.max_train_images))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=args.epochs,
        default_root_dir=args.output_dir,
        enable_progress_bar=False,
        log_every_n_steps=1,
    )
    trainer.fit(
        SMMixClassifier(model),
        DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True),
        DataLoader(digits_tensors("validation"), batch_size=64),
    )
    if trainer.is_global_zero:
        metrics = {name: round(float(value), 4) for name, value in trainer.callback_metrics.items()}
        print(f"processes {trainer.world_size}; global steps {trainer.global_step}; {metrics}")


if __name__ == "__main__":
    main()
