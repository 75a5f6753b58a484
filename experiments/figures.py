"""The figures of the evidence page, drawn from stored runs (``python -m experiments report … --figures DIR``)."""

from __future__ import annotations

import statistics
from pathlib import Path

from experiments.stats import CHANCE_LOSS, Runs, curve, epoch_curve, finals

TITLES = {
    "clean_top1": "held-out clean top-1 (%)",
    "loss_cls": "training L_cls",
    "src_hit": "max window overlaps digit (%)",
    "tgt_avoid": "min window misses digit (%)",
    "src_cover": "digit share in max window (%)",
    "tgt_occlude": "digit share under min window (%)",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scale(key: str) -> float:
    return 1.0 if key == "loss_cls" else 100.0


def curves(groups: dict[str, Runs], keys: list[str], path: Path) -> None:
    """One panel per key: each group's mean over seeds (± std band), and the random window's expectation."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys), 3.8), squeeze=False)
    for axis, key in zip(axes[0], keys, strict=True):
        scale = _scale(key)
        for index, (name, runs) in enumerate(groups.items()):
            if not runs:
                continue
            xs, mean, std = epoch_curve(runs, key)
            axis.plot(xs, [scale * m for m in mean], color=f"C{index}", lw=1.6, label=f"{name} (n={len(runs)})")
            low = [scale * (m - s) for m, s in zip(mean, std, strict=True)]
            axis.fill_between(
                xs, low, [scale * (m + s) for m, s in zip(mean, std, strict=True)], color=f"C{index}", alpha=0.1
            )
        runs = next((runs for runs in groups.values() if runs), [])
        if key in ("src_hit", "tgt_avoid", "src_cover", "tgt_occlude") and runs:
            xs, rand, _ = epoch_curve(runs, f"{key}_random")
            axis.plot(xs, [100 * v for v in rand], color="grey", ls="--", lw=1.2, label="random window")
        axis.set_title(TITLES[key], fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def per_seed_curves(arms: dict[str, Runs], path: Path) -> None:
    """Held-out clean top-1 (top) and training L_cls (bottom) per seed, one column per arm."""
    plt = _pyplot()
    arms = {name: runs for name, runs in arms.items() if runs}
    figure, axes = plt.subplots(2, len(arms), figsize=(3.8 * len(arms), 6.2), sharey="row", squeeze=False)
    for column, (name, runs) in enumerate(arms.items()):
        for run in runs:
            xs = range(1, run["epochs"] + 1)
            axes[0, column].plot(xs, [100 * v for v in curve(run, "clean_top1")], lw=1, label=f"seed {run['seed']}")
            axes[1, column].plot(xs, curve(run, "loss_cls"), lw=1)
        axes[0, column].axhline(20, color="grey", ls="--", lw=1)
        axes[1, column].axhline(CHANCE_LOSS, color="grey", ls="--", lw=1)
        axes[0, column].set_title(name, fontsize=9)
        axes[1, column].set_xlabel("epoch")
        for row in range(2):
            axes[row, column].grid(alpha=0.3)
    axes[0, 0].set_ylabel("held-out clean top-1 (%)")
    axes[1, 0].set_ylabel("training L_cls")
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def budget_curve(arms: dict[str, dict[int, Runs]], path: Path, xlabel: str) -> None:
    """Final clean top-1 against the epoch budget: mean ± std over seeds, dots for the seeds."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.2))
    budgets = sorted({budget for by_budget in arms.values() for budget in by_budget})
    for index, (name, by_budget) in enumerate(arms.items()):
        xs, means, stds = [], [], []
        for budget in budgets:
            values = [100 * value for value in finals(by_budget.get(budget, []))]
            if not values:
                continue
            axis.scatter([budget] * len(values), values, color=f"C{index}", s=12, alpha=0.5, zorder=3)
            xs.append(budget)
            means.append(statistics.mean(values))
            stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, color=f"C{index}", label=name)
    axis.set_xscale("log")
    axis.set_xticks(budgets, [str(budget) for budget in budgets])
    axis.minorticks_off()
    axis.set_xlabel(xlabel)
    axis.set_ylabel("held-out clean top-1 (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def bars(panels: dict[str, dict[str, tuple[float, float]]], path: Path) -> None:
    """One bar panel per metric: ``{metric: {name: (mean, 95% half-width)}}`` in fractions."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for axis, (metric, values) in zip(axes[0], panels.items(), strict=True):
        names = list(values)
        axis.bar(
            range(len(names)),
            [100 * values[name][0] for name in names],
            yerr=[100 * values[name][1] for name in names],
            capsize=4,
            color=[f"C{index}" for index in range(len(names))],
        )
        axis.set_xticks(range(len(names)), names, fontsize=8)
        axis.set_ylabel(f"{metric} (%)")
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
