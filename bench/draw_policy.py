"""The amortised step cost of SMMix against CutMix with shared and with per-process draws, in 2 processes.

With shared draws (the default) every process picks the same method at the same step, so an SMMix step
(two forwards) never waits for another process's Mixup step, and vice versa. With ``per_process_draws``
(the official code's behaviour) each process draws on its own, and a data-parallel step is as slow as its
slowest process: it pays for SMMix's extra forward whenever *any* process drew SMMix.

Runs, in one launch of 2 CPU processes (gloo), ``SMMixTrainer.train`` for CutMix, SMMix with shared draws
and SMMix with per-process draws, all switching to Mixup with probability 0.5, interleaved over several
rounds; prints the median seconds per step and the ratios to CutMix::

    python bench/draw_policy.py                 # launches itself with accelerate (configs/accelerate/cpu_2proc.yaml)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "cutmix": {"mix_method": "cutmix"},
    "smmix_shared": {"mix_method": "smmix"},
    "smmix_per_process": {"mix_method": "smmix", "per_process_draws": True},
}


def seconds_per_step(settings: dict, steps: int, image_size: int, batch: int, seed: int) -> float:
    import torch
    from torch.utils.data import Dataset
    from transformers import ViTConfig, ViTForImageClassification

    from smmix_hf import SMMixConfig, SMMixTrainer

    class Noise(Dataset):
        def __len__(self) -> int:
            return 10_000

        def __getitem__(self, index: int) -> dict:
            generator = torch.Generator().manual_seed(index)
            return {"pixel_values": torch.randn(3, image_size, image_size, generator=generator), "labels": index % 10}

    torch.manual_seed(0)
    model = ViTForImageClassification(
        ViTConfig(
            image_size=image_size, patch_size=8, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=256, num_labels=10,
        )
    )  # fmt: skip
    args = SMMixConfig(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, max_steps=steps, logging_steps=steps,
        save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
        mixup_switch_prob=0.5, motivation_warmup_ratio=0.0, seed=seed, **settings,
    )  # fmt: skip
    trainer = SMMixTrainer(model=model, args=args, train_dataset=Noise())
    result = trainer.train()
    return result.metrics["train_runtime"] / steps


def worker(options: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    times: dict[str, list[float]] = {name: [] for name in RUNS}
    for round_index in range(options.rounds):
        for name, settings in RUNS.items():
            times[name].append(
                seconds_per_step(settings, options.steps, options.image_size, options.batch_size, seed=round_index)
            )
    if int(os.environ.get("RANK", "0")) == 0:
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, value in medians.items():
            print(f"{name}: {value * 1000:.1f} ms/step (median of {options.rounds} runs of {options.steps} steps)")
        shared = medians["smmix_shared"] / medians["cutmix"]
        own = medians["smmix_per_process"] / medians["cutmix"]
        print(f"smmix/cutmix: shared draws {shared:.2f}, per-process draws {own:.2f} (2 processes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(options)
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(port),
        __file__, "--worker", "--steps", str(options.steps), "--rounds", str(options.rounds),
        "--image-size", str(options.image_size), "--batch-size", str(options.batch_size),
    ]  # fmt: skip
    raise SystemExit(subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode)


if __name__ == "__main__":
    main()
