"""A checkpoint cannot run code when a run resumes from it, and a damaged one stops the run in one line.

A real checkpoint of a short demo run is tampered with as an attacker or a broken copy would: a pickle that
creates a file, planted in smmix_hf's draw state and in transformers' own ``rng_state.pth``; a truncated
``model.safetensors``; a draw state pickled as an earlier version could have. The references are the libraries'
own loaders: ``torch.load(weights_only=False)`` does run the planted pickle (so the test's payload is live),
``torch.load(weights_only=True)`` and safetensors' ``load_file`` refuse what we refuse.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from messages import usage_error_line
from safetensors.torch import load_file

from smmix_hf._compat import SAMPLER_STATE_NAME
from smmix_hf.checkpoint_files import CheckpointFileRefused
from smmix_hf.cli.train import cli, main, set_up
from smmix_hf.draws import MixRandom

RUN = ["--config", "demo", "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
       "--per_device_train_batch_size", "8", "--do_eval", "false", "--disable_tqdm", "true",
       "--report_to", "none"]  # fmt: skip


class CreatesAFile:
    """Unpickling it runs ``open(path, "w")``: a stand-in for any command."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("run")
    main([*RUN, "--output_dir", str(output)])
    return output / "checkpoint-2"


def copy_of(checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint, tmp_path / "run" / checkpoint.name))


def resume(checkpoint: Path, monkeypatch, capsys, *extra: str) -> tuple[int, str]:
    """``smmix-train`` resuming from ``checkpoint`` in this process: (exit status, stderr)."""
    argv = [*RUN, "--max_steps", "4", "--output_dir", str(checkpoint.parent), "--resume_from_checkpoint",
            str(checkpoint), *extra]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["smmix-train", *argv])
    monkeypatch.delenv("SMMIX_DEBUG", raising=False)
    try:
        cli()
    except SystemExit as exited:
        return int(exited.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def refused_line(status: int, stderr: str) -> str:
    return usage_error_line(subprocess.CompletedProcess([], status, "", stderr))


def test_the_planted_pickle_runs_when_unpickled(tmp_path):
    """The payload is live: torch's full unpickling creates the file, its weights-only loading refuses it."""
    marker = tmp_path / "created"
    torch.save({"numpy": CreatesAFile(marker)}, tmp_path / "payload.pth")
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tmp_path / "payload.pth", weights_only=True)
    assert not marker.exists()
    torch.load(tmp_path / "payload.pth", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("planted_in", [SAMPLER_STATE_NAME, "rng_state.pth"])
def test_a_malicious_checkpoint_runs_nothing(planted_in, checkpoint, tmp_path, monkeypatch, capsys):
    tampered = copy_of(checkpoint, tmp_path)
    marker = tmp_path / "created"
    torch.save({"numpy": CreatesAFile(marker), "torch": torch.zeros(1)}, tampered / planted_in)
    line = refused_line(*resume(tampered, monkeypatch, capsys))
    assert line.startswith(f"{tampered / planted_in} was refused: it holds a pickled io.open,")
    assert ("--trust_checkpoint" in line) == (planted_in == SAMPLER_STATE_NAME)  # only our own files opt in
    assert not marker.exists()


def test_the_trainer_refuses_a_planted_draw_state_without_the_command_line(checkpoint, tmp_path):
    """``SMMixTrainer.train(resume_from_checkpoint=...)`` in Python reads the draw state weights-only too."""
    tampered = copy_of(checkpoint, tmp_path)
    marker = tmp_path / "created"
    torch.save({"numpy": CreatesAFile(marker), "torch": torch.zeros(1)}, tampered / SAMPLER_STATE_NAME)
    trainer, _, _ = set_up([*RUN, "--max_steps", "4", "--output_dir", str(tmp_path / "python")])
    with pytest.raises(CheckpointFileRefused, match=f"{SAMPLER_STATE_NAME} was refused"):
        trainer.train(resume_from_checkpoint=str(tampered))
    assert not marker.exists()


def test_a_truncated_model_file_is_one_line(checkpoint, tmp_path, monkeypatch, capsys):
    damaged = copy_of(checkpoint, tmp_path)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(Exception, match="incomplete metadata"):  # safetensors' own loader refuses it
        load_file(weights)
    line = refused_line(*resume(damaged, monkeypatch, capsys))
    assert line.startswith(f"{weights} was refused: it is damaged or incomplete")


def test_an_old_pickled_draw_state_needs_the_opt_in(checkpoint, tmp_path, monkeypatch, capsys):
    """A draw state holding a pickled object (here the NumPy generator itself) is refused; --trust_checkpoint true
    unpickles it and the run resumes."""
    old = copy_of(checkpoint, tmp_path)
    state = torch.load(old / SAMPLER_STATE_NAME, weights_only=True)
    torch.save({**state, "generator": np.random.default_rng(7)}, old / SAMPLER_STATE_NAME)
    line = refused_line(*resume(old, monkeypatch, capsys))
    assert f"{old / SAMPLER_STATE_NAME} was refused" in line and "--trust_checkpoint true" in line
    status, stderr = resume(old, monkeypatch, capsys, "--trust_checkpoint", "true")
    assert status == 0, stderr[-3000:]
    assert (old.parent / "checkpoint-4" / SAMPLER_STATE_NAME).is_file()


def test_the_draw_state_loads_weights_only_and_resumes_the_draws(checkpoint, tmp_path):
    """The run's saved draw state passes torch's weights-only loader, and a generator saved and loaded through it
    goes on exactly as the uninterrupted one."""
    torch.load(checkpoint / SAMPLER_STATE_NAME, weights_only=True)
    running = MixRandom(3)
    running.numpy.random(5), torch.rand(5, generator=running.torch)
    torch.save(running.state_dict(), tmp_path / "draws.pth")
    resumed = MixRandom(0)
    resumed.load_state_dict(torch.load(tmp_path / "draws.pth", weights_only=True))
    assert np.array_equal(resumed.numpy.random(4), running.numpy.random(4))
    assert torch.equal(torch.rand(4, generator=resumed.torch), torch.rand(4, generator=running.torch))
