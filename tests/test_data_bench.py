"""The data benchmarks still run (a few small images, one pass) and print their tables; their figures are not
checked here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(script: str, *flags: str) -> str:
    command = [sys.executable, str(BENCH / script), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout


def test_throughput_bench_compares_ours_with_torchvision_and_timm() -> None:
    output = run(
        "data_throughput.py", "--images", "24", "--batch-size", "8", "--repeats", "1", "--workers", "0",
        "--pipelines", "ours-folder-float", "--image-size", "64",
    )  # fmt: skip
    assert re.search(r"^load average \(1, 5, 15 min\) before [\d.]+, [\d.]+, [\d.]+", output, re.MULTILINE)
    for name in ("torchvision", "timm", "ours-folder", "ours-folder-float"):
        assert re.search(rf"^{name}\s+[\d.]+\s+x[\d.]+\s+x[\d.]+$", output, re.MULTILINE), output
    assert re.search(r"^ours/torchvision = [\d.]+, ours/timm = [\d.]+", output, re.MULTILINE)


def test_stage_table_lists_every_stage_of_both_paths() -> None:
    output = run("data_stages.py", "--images", "4", "--rounds", "1", "--image-size", "64", "--batch-size", "2")
    for stage in ("seeding", "decode", "crop + resize", "flip", "RandAugment", "to tensor", "normalise", "erase"):
        assert re.search(rf"^\| {re.escape(stage)} \|", output, re.MULTILINE), output
    assert re.search(r"^timm / ours = [\d.]+", output, re.MULTILINE)


def test_resize_bench_times_pillow_and_torch() -> None:
    output = run("resize_filters.py", "--crops", "3", "--rounds", "1")
    assert re.search(r"^(Pillow|pillow-simd) \S+\s+[\d.]+$", output, re.MULTILINE), output
    assert re.search(r"^torch \S+ uint8\s+[\d.]+$", output, re.MULTILINE), output
