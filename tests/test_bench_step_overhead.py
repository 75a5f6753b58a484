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
    for method in ("none", "mixup", "cutmix", "smmix", "forward"):
        assert any(line.startswith(method) for line in lines), result.stdout
    assert re.fullmatch(r"smmix/cutmix = \d+\.\d\d \(floor \d+\.\d\d\)", lines[-1]), result.stdout
