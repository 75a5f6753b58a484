"""region_head=separate (the official code's second linear head for L_fine): kept out of the saved model,
restored on resume, and trained under DDP although Mixup batches pool no regions.

Its loss and gradients against the independent reference are in ``test_reference_step.py``; under FSDP2
in ``test_distributed.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from launching import REPO_ROOT, accelerate_launch
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification

from smmix_hf import SMMixConfig
from smmix_hf.backbones.region_head import REGION_HEAD_FILE
from smmix_hf.cli.train import main

DEMO = str(REPO_ROOT / "configs" / "demo.yaml")
RUN = ["--config", DEMO, "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3",
       "--per_device_train_batch_size", "16", "--logging_steps", "1", "--disable_tqdm", "true", "--do_eval", "false",
       "--region_head", "separate", "--seed", "5"]  # fmt: skip


def test_separate_head_is_left_out_of_the_model_and_resumes_exactly(tmp_path):
    straight = tmp_path / "straight"
    main([*RUN, "--output_dir", str(straight)])
    weights = load_file(straight / "model.safetensors")
    assert not [name for name in weights if "region_head" in name]
    model, info = AutoModelForImageClassification.from_pretrained(straight, output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    head = load_file(straight / REGION_HEAD_FILE)
    assert head["weight"].shape == model.classifier.weight.shape
    assert (straight / "checkpoint-3" / REGION_HEAD_FILE).is_file()

    # Resumed from step 3, the run ends with the same model and head; without the head's file it is refused.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(straight / "checkpoint-3", resumed / "checkpoint-3")
    main([*RUN, "--output_dir", str(resumed), "--resume_from_checkpoint", str(resumed / "checkpoint-3")])
    for name, tensor in load_file(resumed / "model.safetensors").items():
        assert torch.equal(tensor, weights[name]), name
    for name, tensor in load_file(resumed / REGION_HEAD_FILE).items():
        assert torch.equal(tensor, head[name]), name

    headless = tmp_path / "headless"
    headless.mkdir()
    shutil.copytree(straight / "checkpoint-3", headless / "checkpoint-3")
    (headless / "checkpoint-3" / REGION_HEAD_FILE).unlink()
    with pytest.raises(ValueError, match="region head"):
        main([*RUN, "--output_dir", str(headless), "--resume_from_checkpoint", str(headless / "checkpoint-3")])


def test_separate_head_needs_smmix_with_l_fine_and_ddp_or_fsdp2(tmp_path):
    with pytest.raises(ValueError, match="region_head=separate"):
        SMMixConfig(output_dir=str(tmp_path), mix_method="cutmix", region_head="separate")
    with pytest.raises(ValueError, match="region_head=separate"):
        SMMixConfig(output_dir=str(tmp_path), fine_loss_weight=0.0, region_head="separate")
    with pytest.raises(ValueError, match="FSDP2"):
        SMMixConfig(output_dir=str(tmp_path), region_head="separate", fsdp="full_shard", fsdp_config={"version": 1})
    SMMixConfig(output_dir=str(tmp_path), region_head="separate", fsdp="full_shard", fsdp_config={"version": 2})


def test_separate_head_trains_under_ddp_across_mixup_batches(tmp_path):
    """2 processes (gloo), DDP without its search for unused parameters: a Mixup batch pools no regions, yet the
    head must take part in every backward (with a zero gradient), or DDP fails on the next step."""
    output_dir = tmp_path / "ddp"
    args = [*RUN, "--output_dir", str(output_dir), "--per_device_train_batch_size", "8"]
    args += ["--ddp_find_unused_parameters", "false"]
    result = accelerate_launch(REPO_ROOT / "run_smmix.py", args, {})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "loss" in entry]
    assert any(entry.get("mix_share_mixup") == 1.0 for entry in steps[:-1]), "no Mixup batch before the last step"
    assert (output_dir / REGION_HEAD_FILE).is_file()


def test_load_best_model_at_end_restores_the_best_checkpoints_head(tmp_path):
    """The best checkpoint's head comes back with its weights (here step 3 of 6, the lower evaluation loss)."""
    output_dir = tmp_path / "best"
    main([*RUN, "--output_dir", str(output_dir), "--do_eval", "true", "--eval_strategy", "steps", "--eval_steps", "3",
          "--max_eval_samples", "32", "--load_best_model_at_end", "true", "--metric_for_best_model", "loss",
          "--greater_is_better", "false", "--save_total_limit", "1"])  # fmt: skip
    best = json.loads((output_dir / "trainer_state.json").read_text())["best_model_checkpoint"]
    assert Path(best).name == "checkpoint-3"
    for name, tensor in load_file(output_dir / REGION_HEAD_FILE).items():
        assert torch.equal(tensor, load_file(Path(best) / REGION_HEAD_FILE)[name]), name
    for name, tensor in load_file(output_dir / "model.safetensors").items():
        assert torch.equal(tensor, load_file(Path(best) / "model.safetensors")[name]), name
