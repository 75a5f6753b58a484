"""region_head=separate (the official code's second linear head for L_fine): kept out of the saved model,
restored on resume, and trained under DDP although Mixup batches leave it unused.

Its loss and gradients against the independent reference are in ``test_reference_step.py``; under FSDP2
in ``test_distributed.py``.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from launching import REPO_ROOT, accelerate_launch
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification

from smmix_hf import SMMixConfig
from smmix_hf.cli.train import main
from smmix_hf.region_head import REGION_HEAD_FILE

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


def test_separate_head_needs_smmix_with_l_fine_and_lets_ddp_find_unused_parameters(tmp_path):
    with pytest.raises(ValueError, match="region_head=separate"):
        SMMixConfig(output_dir=str(tmp_path), mix_method="cutmix", region_head="separate")
    with pytest.raises(ValueError, match="region_head=separate"):
        SMMixConfig(output_dir=str(tmp_path), fine_loss_weight=0.0, region_head="separate")
    assert SMMixConfig(output_dir=str(tmp_path), region_head="separate").ddp_find_unused_parameters is True
    given = SMMixConfig(output_dir=str(tmp_path), region_head="separate", ddp_find_unused_parameters=False)
    assert given.ddp_find_unused_parameters is False
    assert SMMixConfig(output_dir=str(tmp_path)).ddp_find_unused_parameters is None


def test_separate_head_trains_under_ddp_across_mixup_batches(tmp_path):
    """2 processes (gloo): a Mixup batch leaves the head without a gradient; DDP must not fail on the next step."""
    output_dir = tmp_path / "ddp"
    args = [*RUN, "--output_dir", str(output_dir), "--per_device_train_batch_size", "8"]
    result = accelerate_launch(REPO_ROOT / "run_smmix.py", args, {})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "loss" in entry]
    assert any(entry.get("mix_share_mixup") == 1.0 for entry in steps[:-1]), "no Mixup batch before the last step"
    assert (output_dir / REGION_HEAD_FILE).is_file()
