"""Numbers for the experiment reports: percent text, per-seed lists, Welch intervals.

Intervals are 95% Welch t intervals on the difference of two means (unequal variances).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

Runs = list[dict[str, Any]]


def pct(value: float, signed: bool = False) -> str:
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def per_seed(runs: Runs, key: str = "clean_top1") -> str:
    return ", ".join(f"s{run['seed']}: {pct(run[key])}" for run in runs)


def welch(a: list[float], b: list[float]) -> tuple[float, float, float] | None:
    """mean(b) − mean(a) with its 95% Welch t interval; None if either side has fewer than 2 values."""
    from scipy.stats import t

    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.mean(b) - statistics.mean(a)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(t.ppf(0.975, df)) * se
    return diff, diff - half, diff + half


def welch_text(a: list[float], b: list[float]) -> str:
    result = welch(a, b)
    if result is None:
        return "–"
    diff, low, high = result
    return f"{pct(diff, True)} [{pct(low, True)}, {pct(high, True)}]"


def finals(runs: Runs) -> list[float]:
    return [float(run["clean_top1"]) for run in runs]


def mean_std_signed(values: list[float]) -> str:
    if len(values) < 2:
        return pct(values[0], True) if values else "–"
    return f"{pct(statistics.mean(values), True)} ± {pct(statistics.stdev(values))}"
