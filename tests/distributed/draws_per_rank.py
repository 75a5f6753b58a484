"""The mixing draws of each process of a 2-process run, with shared and with per-process draws.

Run with ``torchrun --nproc_per_node 2``; rank k writes ``$SMMIX_RECORD_DIR/rank<k>.json``: for each setting of
``per_process_draws``, the first draws of ``SMMixTrainer``'s method (CutMix boxes and Mixup weights).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_models import tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer

DRAWS = 40


def draws(per_process_draws: bool, output_dir: str) -> list[list[float | int | None]]:
    args = SMMixConfig(
        output_dir=output_dir,
        mix_method="cutmix",
        mixup_switch_prob=0.5,
        per_process_draws=per_process_draws,
        use_cpu=True,
        report_to="none",
        seed=5,
    )
    method = SMMixTrainer(model=tiny_vit(), args=args).method
    records = []
    for _ in range(DRAWS):
        draw = method.draw((32, 32), None)
        records.append([*(draw.box or (None,) * 4), draw.source_fraction])
    return records


def main() -> None:
    with tempfile.TemporaryDirectory() as output_dir:
        record = {"shared": draws(False, output_dir), "per_process": draws(True, output_dir)}
    rank = dist.get_rank()
    Path(os.environ["SMMIX_RECORD_DIR"], f"rank{rank}.json").write_text(json.dumps(record))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
