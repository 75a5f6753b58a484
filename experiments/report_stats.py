"""Numbers for the experiment reports: percent text, per-seed lists, Welch and paired intervals.

Intervals are 95% Welch t intervals on the difference of two means (unequal variances), or, where two arms ran
the same seeds, 95% paired t intervals on the mean per-seed difference.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

Runs = list[dict[str, Any]]

# The paper's Tab. 7 rows as experiment variants, and its ImageNet DeiT-S top-1 for each.
TAB7 = ["cutmix", "maxmin_only", "maxmin_con", "maxmin_fine", "smmix"]
PAPER_TAB7 = {"cutmix": "79.8", "maxmin_only": "80.4", "maxmin_con": "–", "maxmin_fine": "80.9", "smmix": "81.1"}


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


def paired_text(a: Runs, b: Runs) -> str:
    """mean over common seeds of b − a (clean top-1) with its 95% paired t interval (scipy's ``ttest_rel``), and
    the number of pairs; "–" with fewer than 2 common seeds."""
    from scipy.stats import ttest_rel

    by_seed = {run["seed"]: float(run["clean_top1"]) for run in a}
    pairs = [(by_seed[run["seed"]], float(run["clean_top1"])) for run in b if run["seed"] in by_seed]
    if len(pairs) < 2:
        return "–"
    ours, theirs = [second for _, second in pairs], [first for first, _ in pairs]
    interval = ttest_rel(ours, theirs).confidence_interval(0.95)
    diff = statistics.mean(ours) - statistics.mean(theirs)
    return f"{pct(diff, True)} [{pct(interval.low, True)}, {pct(interval.high, True)}] ({len(pairs)} pairs)"


def variance_ratio_text(a: list[float], b: list[float]) -> str:
    """The seed spread of b against a's: the ratio of sample stds sd_b / sd_a with its 95% interval from the F
    distribution of the variance ratio (normal samples); "–" with fewer than 2 values on either side."""
    from scipy.stats import f

    if len(a) < 2 or len(b) < 2 or statistics.stdev(a) == 0:
        return "–"
    ratio = statistics.variance(b) / statistics.variance(a)
    dof_b, dof_a = len(b) - 1, len(a) - 1
    low, high = ratio / f.ppf(0.975, dof_b, dof_a), ratio / f.ppf(0.025, dof_b, dof_a)
    return f"{math.sqrt(ratio):.2f} [{math.sqrt(low):.2f}, {math.sqrt(high):.2f}]"


def finals(runs: Runs) -> list[float]:
    return [float(run["clean_top1"]) for run in runs]


def mean_std_signed(values: list[float]) -> str:
    if len(values) < 2:
        return pct(values[0], True) if values else "–"
    return f"{pct(statistics.mean(values), True)} ± {pct(statistics.stdev(values))}"
