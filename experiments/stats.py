"""Numbers for the reports: selecting runs, per-epoch curves, take-off epochs, percent text and intervals.

Intervals are 95% Welch t intervals on the difference of two means (unequal variances), or, where two arms ran
the same seeds, 95% paired t intervals on the mean per-seed difference. Accuracies are fractions; the text is in
percent (points for differences).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

Runs = list[dict[str, Any]]
CHANCE_LOSS = math.log(10)


def select(runs: Runs, variant: str, epochs: int | None = None, warmup: str = "none", seeds: Any = None) -> Runs:
    """The runs of one arm (at one budget, of some seeds), by seed."""
    chosen = [
        run
        for run in runs
        if run["variant"] == variant
        and run["warmup"] == warmup
        and (epochs is None or run["epochs"] == epochs)
        and (seeds is None or run["seed"] in seeds)
    ]
    return sorted(chosen, key=lambda run: run["seed"])


def finals(runs: Runs) -> list[float]:
    return [float(run["clean_top1"]) for run in runs]


def curve(run: dict[str, Any], key: str) -> list[float]:
    """One run's per-epoch values of ``key`` (``*_random``: the uniform-window expectation at every epoch)."""
    if key.endswith("_random"):
        return [run["random"][key.removesuffix("_random")]] * run["epochs"]
    return [float(value) for value in run["history"][key]]


def epoch_curve(runs: Runs, key: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and std over ``runs`` of ``key`` (the epochs all runs share)."""
    if not runs:
        return [], [], []
    curves = [curve(run, key) for run in runs]
    length = min(len(values) for values in curves)
    columns = [[values[index] for values in curves] for index in range(length)]
    means = [statistics.mean(column) for column in columns]
    stds = [statistics.stdev(column) if len(column) > 1 else 0.0 for column in columns]
    return list(range(1, length + 1)), means, stds


def at_epoch(runs: Runs, key: str, epoch: int) -> float | None:
    """Mean over ``runs`` of ``key`` at ``epoch``; None when not every run got there."""
    epochs, means, _ = epoch_curve(runs, key)
    return means[epoch - 1] if epoch in epochs else None


def takeoff_epoch(run: dict[str, Any], level: float = 0.2) -> int | None:
    """First epoch whose held-out clean top-1 reaches ``level`` (chance is 0.1); None if never."""
    return next((index + 1 for index, value in enumerate(curve(run, "clean_top1")) if value >= level), None)


def loss_takeoff_epoch(run: dict[str, Any], margin: float = 0.03) -> int | None:
    """First epoch whose mean training L_cls is ``margin`` below chance (ln 10); None if never."""
    values = curve(run, "loss_cls")
    return next((index + 1 for index, value in enumerate(values) if value <= CHANCE_LOSS - margin), None)


def last_fraction_change(run: dict[str, Any], fraction: float = 0.2) -> float:
    """Clean top-1 at the end minus at the start of the last ``fraction`` of epochs (the convergence test)."""
    values = curve(run, "clean_top1")
    start = max(0, math.floor(len(values) * (1 - fraction)) - 1)  # the last epoch at or before 80%
    return values[-1] - values[start]


def window_mean(run: dict[str, Any], first: int, last: int) -> float:
    """Mean held-out clean top-1 over epochs ``first`` to ``last`` of one run."""
    return statistics.mean(curve(run, "clean_top1")[first - 1 : last])


def pct(value: float, signed: bool = False) -> str:
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def mean_std(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{scale * values[0]:.{digits}f}"
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * statistics.stdev(values):.{digits}f}"


def mean_std_signed(values: list[float]) -> str:
    if len(values) < 2:
        return pct(values[0], True) if values else "–"
    return f"{pct(statistics.mean(values), True)} ± {pct(statistics.stdev(values))}"


def per_seed(runs: Runs, values: list[float] | None = None, signed: bool = False) -> str:
    """``s0: 12.3, s1: …``: each run's final clean top-1, or the given values."""
    values = finals(runs) if values is None else values
    return ", ".join(f"s{run['seed']}: {pct(value, signed)}" for run, value in zip(runs, values, strict=True))


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


def interval_text(result: tuple[float, float, float] | None) -> str:
    if result is None:
        return "–"
    diff, low, high = result
    return f"{pct(diff, True)} [{pct(low, True)}, {pct(high, True)}]"


def welch_text(a: list[float], b: list[float]) -> str:
    return interval_text(welch(a, b))


def excludes_zero(result: tuple[float, float, float] | None) -> bool:
    return result is not None and (result[1] > 0 or result[2] < 0)


def paired(a: Runs, b: Runs) -> tuple[tuple[float, float, float], int] | None:
    """Mean over common seeds of b − a (clean top-1) with its 95% paired t interval, and the number of pairs."""
    from scipy.stats import ttest_rel

    by_seed = {run["seed"]: float(run["clean_top1"]) for run in a}
    pairs = [(by_seed[run["seed"]], float(run["clean_top1"])) for run in b if run["seed"] in by_seed]
    if len(pairs) < 2:
        return None
    ours, theirs = [second for _, second in pairs], [first for first, _ in pairs]
    interval = ttest_rel(ours, theirs).confidence_interval(0.95)
    return (statistics.mean(ours) - statistics.mean(theirs), interval.low, interval.high), len(pairs)


def paired_text(a: Runs, b: Runs, count: bool = True) -> str:
    result = paired(a, b)
    if result is None:
        return "–"
    interval, pairs = result
    return interval_text(interval) + (f" ({pairs} pairs)" if count else "")


def variance_ratio_text(a: list[float], b: list[float]) -> str:
    """sd_b / sd_a with its 95% interval from the F distribution of the variance ratio (normal samples)."""
    from scipy.stats import f

    if len(a) < 2 or len(b) < 2 or statistics.stdev(a) == 0:
        return "–"
    ratio = statistics.variance(b) / statistics.variance(a)
    dof_b, dof_a = len(b) - 1, len(a) - 1
    low, high = ratio / f.ppf(0.975, dof_b, dof_a), ratio / f.ppf(0.025, dof_b, dof_a)
    return f"{math.sqrt(ratio):.2f} [{math.sqrt(low):.2f}, {math.sqrt(high):.2f}]"


def spread(values: list[float]) -> tuple[float, float]:
    """Sample std and range (max − min) of final accuracies."""
    return (statistics.stdev(values) if len(values) > 1 else 0.0), max(values) - min(values)
