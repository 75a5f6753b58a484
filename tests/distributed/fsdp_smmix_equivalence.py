"""SMMix loss and gradients of a tiny ViT sharded with FSDP2 across the processes vs. the unsharded model.

Run with ``torchrun --nproc_per_node 2``; rank k writes ``$SMMIX_RECORD_DIR/rank<k>.json``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_models import tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer


def main() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = tiny_vit()
    reference = copy.deepcopy(model)
    with tempfile.TemporaryDirectory() as output_dir:
        args = SMMixConfig(output_dir=output_dir, mixup_switch_prob=0.0, use_cpu=True, report_to="none", seed=3)
        sharded_trainer = SMMixTrainer(model=model, args=args)
        reference_trainer = SMMixTrainer(model=reference, args=args)
    for layer in model.vit.layers:
        fully_shard(layer)
    fully_shard(model)

    generator = torch.Generator().manual_seed(1)
    inputs = {
        "pixel_values": torch.randn(8, 3, 32, 32, generator=generator),
        "labels": torch.randint(0, 10, (8,), generator=generator),
    }
    model.train()
    reference.train()
    loss = sharded_trainer.compute_loss(model, inputs)
    loss.backward()
    reference_loss = reference_trainer.compute_loss(reference, inputs)
    reference_loss.backward()

    sharded_grads = {name: param.grad.full_tensor() for name, param in model.named_parameters()}
    worst = max(
        (sharded_grads[name] - param.grad).abs().max().item() / (param.grad.abs().max().item() + 1e-12)
        for name, param in reference.named_parameters()
    )
    record = {
        "loss": loss.item(),
        "reference_loss": reference_loss.item(),
        "worst_relative_grad_difference": worst,
        "sharded": all(type(param).__name__ == "DTensor" for param in model.parameters()),
        "has_region_logits": sharded_trainer.probe.region_logits is not None,
    }
    Path(os.environ["SMMIX_RECORD_DIR"], f"rank{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
