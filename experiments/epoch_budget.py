#!/usr/bin/env python
"""clean top-1 against the epoch budget, CutMix vs SMMix, warm-started.

From scratch, this machine cannot train the canvas task to convergence (CutMix is still rising at 20
epochs, see ``trap_mechanism.py``). This experiment uses a warm start instead: the
same ViT (``trap_common.py``) is first trained without mixing on the full-frame 32 px digits (the digit
fills the image; one checkpoint, seed 0, made here if missing under ``outputs/``), then fine-tuned on
the 32 px canvas digits with each method for each epoch budget (its own cosine schedule per budget).
Arms: CutMix, SMMix (all three terms), and SMMix with the warm-up fix of ``trap_fix.py``.

Section 1's test, per run: the held-out clean top-1 changes by less than 1 point over the last 20%
of epochs.

    python experiments/epoch_budget.py --seeds 0 1 2 --epochs 2 4 8 16 40

Writes ``experiments/results/epoch_budget/``: one JSON per run, ``summary.md``, ``epoch_budget.png``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

EXPERIMENT = "epoch_budget"


def summary(runs: list[dict], arms: list[tuple[str, str]], budgets: list[int]) -> str:
    from trap_common import arm_label, last_fraction_change, mean_std, select

    lines = [
        "# Clean top-1 against the epoch budget (warm start from full-frame digits, 32 px canvas digits)",
        "",
        "Held-out clean top-1 (360 canvases), mean ± std over seeds, percent (n seeds in brackets). "
        "Δlast20%: clean top-1 at the end minus at 80% of the epochs (section 1's convergence test: |Δ| < 1 point).",
        "",
        "| arm | " + " | ".join(f"{budget} epochs" for budget in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for variant, warmup in arms:
        cells = []
        for budget in budgets:
            chosen = select(runs, variant, warmup, budget)
            cells.append(f"{mean_std([run['clean_top1'] for run in chosen])} ({len(chosen)})" if chosen else "–")
        lines.append(f"| {arm_label(variant, warmup)} | " + " | ".join(cells) + " |")
    lines += ["", "| arm | " + " | ".join(f"Δlast20% at {budget} epochs" for budget in budgets) + " |"]
    lines.append("|---|" + "---|" * len(budgets))
    for variant, warmup in arms:
        cells = []
        for budget in budgets:
            chosen = select(runs, variant, warmup, budget)
            changes = [last_fraction_change(run) for run in chosen]
            cells.append(mean_std(changes) if changes else "–")
        lines.append(f"| {arm_label(variant, warmup)} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def plot(runs: list[dict], arms: list[tuple[str, str]], budgets: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trap_common import arm_label, select

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for variant, warmup in arms:
        xs, means, stds = [], [], []
        for budget in budgets:
            values = [run["clean_top1"] for run in select(runs, variant, warmup, budget)]
            if values:
                xs.append(budget)
                means.append(100 * statistics.mean(values))
                stds.append(100 * statistics.stdev(values) if len(values) > 1 else 0.0)
        axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=arm_label(variant, warmup))
    axis.set_xscale("log")
    axis.set_xticks(budgets, [str(budget) for budget in budgets])
    axis.set_xlabel("epoch budget (fine-tuning)")
    axis.set_ylabel("held-out clean top-1 (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, nargs="+", default=[2, 4, 8, 16, 40], help="Epoch budgets.")
    parser.add_argument("--warmup", default="rand+nocon:25%", help="The fix's warm-up spec for the third arm.")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--summary_only", action="store_true")
    args = parser.parse_args(argv)
    from trap_common import PRETRAINED, RESULTS, load_runs, pretrain, run_arms

    arms = [("cutmix", "none"), ("smmix", "none"), ("smmix", args.warmup)]
    if not args.summary_only:
        if not (PRETRAINED / "config.json").exists():
            pretrain(PRETRAINED)
        run_arms(EXPERIMENT, arms, args.seeds, args.epochs, learning_rate=args.learning_rate, init=str(PRETRAINED))
    runs = load_runs(EXPERIMENT)
    out = RESULTS / EXPERIMENT
    (out / "summary.md").write_text(summary(runs, arms, args.epochs))
    plot(runs, arms, args.epochs, out / "epoch_budget.png")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
