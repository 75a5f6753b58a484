"""SMMixTask in the loops people train with, run for real on CPU: the examples under ``examples/`` (which the docs
page "SMMix in your own training loop" shows) on 1 and 2 processes.

- a plain PyTorch loop with ``accelerate``: killed mid-epoch and resumed, its final weights equal an
  uninterrupted run's;
- timm's way (``timm.create_model``, ``create_optimizer_v2``, ``create_scheduler_v2``, ``prepare_distributed``) on
  2 gloo processes, with a frozen motivator that stays outside DDP;
- Lightning, whose ``training_step`` returns the task's loss, with ``strategy="ddp"`` on 2 processes.

Single-process runs execute the example in this interpreter (``runpy``), so they run the code under test.
Multi-process runs start fresh interpreters; they import the package these tests import (the checkout first on
``PYTHONPATH``).
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from launching import accelerate_launch, check_exit, free_port
from safetensors.torch import load_file

import smmix_hf

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = ["--max_train_images", "128", "--batch_size", "16"]


def run_example(name: str, args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch) -> str:
    """Run ``examples/<name>`` in this process with ``args``; returns what it printed."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def subprocess_env() -> dict[str, str]:
    """Offline, one thread per process, and the package under test first on the path."""
    package_root = str(Path(smmix_hf.__file__).resolve().parents[1])
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def launch(command: list[str]) -> subprocess.CompletedProcess:
    """Run a multi-process command (torchrun, Lightning's own launcher) to its end."""
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, **subprocess_env()}
    )
    check_exit(result)
    return result


def accelerate_2proc(script: str, args: list[str], expect_kill: bool = False) -> subprocess.CompletedProcess:
    result = accelerate_launch(EXAMPLES / script, args, subprocess_env())
    if expect_kill:
        assert result.returncode != 0, "the run was to be killed"
    else:
        check_exit(result)
    return result


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "final" / "model.safetensors")


def test_accelerate_loop_trains_on_one_process(tmp_path, capsys, monkeypatch):
    out = run_example(
        "accelerate_loop.py", ["--output_dir", str(tmp_path), "--epochs", "1", *SMALL], capsys, monkeypatch
    )
    assert "epoch 1: loss" in out
    assert all(torch.isfinite(value).all() for value in final_weights(tmp_path).values())


def test_accelerate_loop_resumes_exactly_after_a_kill_on_two_processes(tmp_path):
    common = ["--epochs", "3", *SMALL]  # 128 images, 16 per process: 4 steps per epoch, 12 in all
    straight = accelerate_2proc("accelerate_loop.py", ["--output_dir", str(tmp_path / "straight"), *common])
    assert straight.stdout.count("epoch 3: loss") == 1, straight.stdout[-2000:]
    killed_dir = str(tmp_path / "killed")
    accelerate_2proc("accelerate_loop.py", ["--output_dir", killed_dir, *common, "--kill_at_step", "6"], True)
    saved = sorted(path.name for path in (tmp_path / "killed" / "checkpoints").iterdir())
    assert saved == ["epoch_1"], f"killed in epoch 2, after the epoch 1 checkpoint: {saved}"
    resumed = accelerate_2proc("accelerate_loop.py", ["--output_dir", killed_dir, *common, "--resume"])
    assert "resumed from" in resumed.stdout and "at epoch 1" in resumed.stdout, resumed.stdout[-2000:]
    expected, got = final_weights(tmp_path / "straight"), final_weights(tmp_path / "killed")
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        assert torch.equal(value, got[name]), f"{name} differs after the resume"
    assert "epoch 2: loss" in resumed.stdout and "epoch 3: loss" in resumed.stdout
    at_the_kill = load_file(tmp_path / "killed" / "checkpoints" / "epoch_1" / "model.safetensors")
    assert not torch.equal(at_the_kill["classifier.weight"], got["classifier.weight"]), "the resumed run trained"


def test_timm_loop_trains_on_one_process(capsys, monkeypatch):
    out = run_example("timm_loop.py", ["--epochs", "1", *SMALL], capsys, monkeypatch)
    assert out.startswith("trained: VisionTransformer; motivator: None; last step {'loss':")


def test_timm_loop_with_timms_ema_as_the_motivator(capsys, monkeypatch):
    """``--ema_motivator``: timm's ``ModelEmaV3`` of the model places the windows (tests/test_model_copies.py checks
    that the task's clean logits are the EMA's own)."""
    out = run_example("timm_loop.py", ["--epochs", "1", "--ema_motivator", *SMALL], capsys, monkeypatch)
    assert out.startswith("trained: VisionTransformer; motivator: VisionTransformer; last step {'loss':")


def test_timm_loop_on_two_gloo_processes_keeps_the_motivator_outside_ddp():
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        str(EXAMPLES / "timm_loop.py"), "--epochs", "1", "--motivator", *SMALL,
    ]  # fmt: skip
    result = launch(command)
    assert "trained: DistributedDataParallel; motivator: VisionTransformer;" in result.stdout, result.stdout[-2000:]
    assert result.stdout.count("trained:") == 1, "rank 0 reports"
    assert "processes 2, same weights on all: True" in result.stdout, "the mixed forward went through DDP"


def test_lightning_loop_trains_on_one_process(tmp_path, capsys, monkeypatch):
    args = ["--epochs", "1", "--output_dir", str(tmp_path), *SMALL]
    out = run_example("lightning_loop.py", args, capsys, monkeypatch)
    assert "processes 1; global steps 8;" in out and "'loss_fine'" in out and "'val_top1'" in out
    (checkpoint,) = tmp_path.rglob("*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert "task._extra_state" in state, "Lightning's checkpoint carries SMMix's draws"


def test_lightning_loop_with_ddp_on_two_processes(tmp_path):
    command = [
        sys.executable, str(EXAMPLES / "lightning_loop.py"), "--devices", "2", "--epochs", "1",
        "--output_dir", str(tmp_path), *SMALL,
    ]  # fmt: skip
    result = launch(command)
    assert "processes 2; global steps 4;" in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]
