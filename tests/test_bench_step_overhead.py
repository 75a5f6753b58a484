"""The step-overhead benchmark still runs (tiny model, 2 repetitions); its figures are not checked here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "step_overhead.py"


def test_step_overhead_benchmark_runs_and_reports_the_ratio():
    tiny = ["--hidden-size", "32", "--layers", "2", "--heads", "2", "--image-size", "32", "--patch-size", "8"]
    result = subprocess.run(
        [sys.executable, str(BENCH), *tiny, "--repeats", "2", "--warmup", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    for mode in ("trainer", "loop"):
        for method in ("none", "mixup", "cutmix", "smmix"):
            assert any(line.startswith(f"{mode}:{method} ") for line in lines), result.stdout
    assert any(line.startswith("forward ") for line in lines), result.stdout
    assert re.fullmatch(r"trainer: smmix/cutmix = \d+\.\d\d \(floor \d+\.\d\d\)", lines[-2]), result.stdout
    assert re.fullmatch(r"loop: smmix/cutmix = \d+\.\d\d \(floor \d+\.\d\d\)", lines[-1]), result.stdout


def test_step_overhead_benchmark_builds_the_model_of_a_checkpoint_folder_in_bf16(tmp_path):
    """``--config`` reads the model from a config.json (as for a Hub fixture); ``--bf16`` runs under autocast."""
    from transformers import ViTConfig

    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    config.num_labels = 7
    config.save_pretrained(tmp_path)
    result = subprocess.run(
        [sys.executable, str(BENCH), "--config", str(tmp_path), "--bf16", "--repeats", "2", "--warmup", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    header = result.stdout.strip().splitlines()[0]
    assert "width 32, 2 layers, 2 heads, 32px/patch 8, 7 classes" in header and "bf16" in header, result.stdout
