"""`--torch_compile` with SMMix: a fixed, small set of graphs, no recompilation from step to step."""

from __future__ import annotations

import math

import pytest
import torch
import torch._dynamo.utils as dynamo_utils
from tiny_data import digits_split
from tiny_models import tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch


@pytest.mark.parametrize("region_head", ["shared", "separate"])
def test_torch_compile_builds_each_graph_once(tmp_path, region_head):
    torch._dynamo.reset()
    dynamo_utils.counters.clear()
    args = SMMixConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        max_steps=10,
        mixup_switch_prob=0.5,
        region_head=region_head,
        torch_compile=True,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=10,
        seed=1,
    )
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, train_dataset=digits_split("train", 80, True), data_collator=collate_image_batch
    )
    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert math.isfinite(log["loss"]) and 0 < log["mix_share_smmix"] < 1, "both SMMix and Mixup batches ran"
    # One graph each for the motivated forward (eval), the SMMix forward (regions pooled) and the Mixup forward
    # (which, with the separate head, passes zero region rows through it).
    assert dynamo_utils.counters["stats"]["unique_graphs"] <= 3
    assert not dynamo_utils.counters["recompiles"], dict(dynamo_utils.counters["recompiles"])
    assert not dynamo_utils.counters["graph_break"], dict(dynamo_utils.counters["graph_break"])
    torch._dynamo.reset()
