"""The step-overhead benchmark still runs (tiny models, 2 repetitions); its figures are not checked here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "step_overhead.py"
TINY = ["--hidden-size", "32", "--layers", "2", "--heads", "2", "--image-size", "32", "--patch-size", "8"]
RATIO = r"\d+\.\d\d"


def run_bench(*flags: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(BENCH), *flags, "--repeats", "2", "--warmup", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout.strip().splitlines()


def test_step_overhead_benchmark_runs_and_reports_the_ratio():
    lines = run_bench(*TINY)
    output = "\n".join(lines)
    for mode in ("trainer", "loop"):
        for method in ("none", "mixup", "cutmix", "smmix"):
            assert any(line.startswith(f"{mode}:{method} ") for line in lines), output
    assert any(line.startswith("forward ") for line in lines), output
    assert re.fullmatch(rf"trainer: smmix/cutmix = {RATIO} \(floor {RATIO}\)", lines[-3]), output
    assert re.fullmatch(rf"loop: smmix/cutmix = {RATIO} \(floor {RATIO}\)", lines[-2]), output
    assert lines[-1].startswith("load average (1, 5, 15 min) before -> after the run: "), output


def test_one_run_times_every_model_against_its_own_floor():
    """The hand-wired ViT and the generically read timm DeiT, timm EVA-02 and DINOv2, each with its floor."""
    models = ("vit", "timm-deit", "timm-eva02", "dinov2")
    lines = run_bench(*TINY, "--models", ",".join(models), "--methods", "cutmix,smmix", "--modes", "loop")
    output = "\n".join(lines)
    headers = [line for line in lines if line.startswith("model: ")]
    assert len(headers) == len(models), output
    assert "timm eva02_tiny_patch14_224 (generic)" in headers[2] and "Dinov2 (generic)" in headers[3], output
    rows = lines[-1 - len(models) : -1]
    for model, row in zip(models, rows, strict=True):
        above = r"[+-]\d+\.\d\d"
        paired = r"[+-]\d+\.\d{3} \[[+-]\d+\.\d{3}, [+-]\d+\.\d{3}\]"
        assert re.fullmatch(rf"{model} +loop +{RATIO} +{RATIO} +{above} +{paired} +(yes|no)", row), output


def test_step_overhead_benchmark_builds_the_model_of_a_checkpoint_folder_in_bf16(tmp_path):
    """``--config`` reads the model from a config.json (as for a Hub fixture); ``--bf16`` runs under autocast."""
    from transformers import ViTConfig

    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    config.num_labels = 7
    config.save_pretrained(tmp_path)
    lines = run_bench("--config", str(tmp_path), "--bf16")
    assert "width 32, 2 layers, 2 heads, 32px/patch 8, 7 classes" in lines[0] and "bf16" in lines[0], lines
