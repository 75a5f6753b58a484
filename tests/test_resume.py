"""A run killed with SIGKILL mid-epoch and resumed from its checkpoint ends with the same weights."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from smmix_hf._compat import SAMPLER_STATE_NAME
from smmix_hf.cli.train import main

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO = str(REPO_ROOT / "configs" / "demo.yaml")
# 1,437 training digits at batch 32: 45 steps per epoch, so every checkpoint below is mid-epoch.
RUN = ["--config", DEMO, "--max_steps", "12", "--save_strategy", "steps", "--save_steps", "4",
       "--per_device_train_batch_size", "32", "--logging_steps", "4", "--disable_tqdm", "true", "--do_eval", "false",
       "--mixup_switch_prob", "0.5", "--seed", "7"]  # fmt: skip


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "model.safetensors")


def state_written(checkpoint: Path) -> bool:
    """Whether ``checkpoint``'s ``trainer_state.json`` holds its JSON: the file exists while the Trainer writes it,
    so a SIGKILL right after it appears can leave it empty (seen once on a loaded machine)."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def kill_after_first_checkpoint(output_dir: Path) -> Path:
    """Start a run, SIGKILL it once a checkpoint is complete, return the newest complete checkpoint."""
    command = [sys.executable, str(REPO_ROOT / "run_smmix.py"), *RUN, "--output_dir", str(output_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + 300
    while not state_written(output_dir / "checkpoint-4"):
        assert process.poll() is None, "the run ended before writing its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (output_dir / "model.safetensors").exists(), "the run finished before it was killed"
    complete = [path for path in output_dir.glob("checkpoint-*") if state_written(path)]
    return max(complete, key=lambda path: int(path.name.split("-")[1]))


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    main([*RUN, "--output_dir", str(tmp_path / "straight")])
    reference = final_weights(tmp_path / "straight")

    interrupted = tmp_path / "interrupted"
    checkpoint = kill_after_first_checkpoint(interrupted)
    assert (checkpoint / SAMPLER_STATE_NAME).is_file(), "the SMMix draws' state is part of every checkpoint"
    stale = tmp_path / "stale_draws"
    shutil.copytree(interrupted, stale)

    main([*RUN, "--output_dir", str(interrupted), "--resume_from_checkpoint", str(checkpoint)])
    resumed = final_weights(interrupted)
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[name], reference[name]) for name in reference)

    # Without the sampler's state the resumed run replays the draws from the start: the weights differ.
    (stale / checkpoint.name / SAMPLER_STATE_NAME).unlink()
    main([*RUN, "--output_dir", str(stale), "--resume_from_checkpoint", str(stale / checkpoint.name)])
    without_draws = final_weights(stale)
    assert not all(torch.equal(without_draws[name], reference[name]) for name in reference)
