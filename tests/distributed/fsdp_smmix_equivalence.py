"""SMMix loss and gradients of a tiny ViT sharded with FSDP2 across the processes vs. the unsharded model.

Run with ``torchrun --nproc_per_node 2``; rank k writes ``$SMMIX_RECORD_DIR/rank<k>.json``.
``SMMIX_REGION_HEAD=separate`` gives L_fine the separate region head (sharded with the model's root), whose
saved file (gathered from the shards) must equal the unsharded model's head.
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
from safetensors.torch import load_file
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_models import tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.backbones.region_head import REGION_HEAD_FILE, save_region_head


def main() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = tiny_vit()
    reference = copy.deepcopy(model)
    with tempfile.TemporaryDirectory() as output_dir:
        region_head = os.environ.get("SMMIX_REGION_HEAD", "shared")
        args = SMMixConfig(
            output_dir=output_dir,
            mixup_switch_prob=1.0,
            use_cpu=True,
            report_to="none",
            seed=3,
            region_head=region_head,
        )
        sharded_trainer = SMMixTrainer(model=model, args=args)
        reference_trainer = SMMixTrainer(model=reference, args=args)
    separate = region_head == "separate"
    if separate:
        reference.smmix_region_head.load_state_dict(model.smmix_region_head.state_dict())
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
    region_logits_taken = []  # L_fine read the region logits the sharded mixed forward left
    take_region_logits = sharded_trainer.probe.take_region_logits
    sharded_trainer.probe.take_region_logits = lambda: region_logits_taken.append(1) or take_region_logits()
    loss = sharded_trainer.compute_loss(model, inputs)
    loss.backward()
    reference_loss = reference_trainer.compute_loss(reference, inputs)
    reference_loss.backward()

    sharded_grads = {name: param.grad.full_tensor() for name, param in model.named_parameters()}
    worst = max(
        (sharded_grads[name] - param.grad).abs().max().item() / (param.grad.abs().max().item() + 1e-12)
        for name, param in reference.named_parameters()
    )
    head_file_matches = None
    if separate:
        head_dir = os.path.join(os.environ["SMMIX_RECORD_DIR"], "head")
        save_region_head(model, head_dir, write=rank == 0)
        dist.barrier()
        saved = load_file(os.path.join(head_dir, REGION_HEAD_FILE))
        head_file_matches = all(
            torch.equal(saved[name], param.detach()) for name, param in reference.smmix_region_head.named_parameters()
        )
    record = {
        "head_file_matches": head_file_matches,
        "region_head_has_grad": separate and reference.smmix_region_head.weight.grad is not None,
        "loss": loss.item(),
        "reference_loss": reference_loss.item(),
        "worst_relative_grad_difference": worst,
        "sharded": all(type(param).__name__ == "DTensor" for param in model.parameters()),
        "has_region_logits": bool(region_logits_taken),
    }
    Path(os.environ["SMMIX_RECORD_DIR"], f"rank{rank}.json").write_text(json.dumps(record))
    dist.barrier()  # neither process tears gloo down while the other is still in a collective
    dist.destroy_process_group()
    # Interpreter finalization can still abort the process (SIGABRT, "terminate called without an active
    # exception") while Gloo worker threads release work that holds tensors; seen on a loaded 2-core machine with
    # torch 2.14 in 1 of 3 suite runs, after the record above was written. Upstream: pytorch/pytorch#179291 (an
    # atexit destroy for this, abandoned). Everything the test reads is on disk, so skip finalization.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
