#!/usr/bin/env python
"""a warm-up against SMMix's early-training trap, tested with 5 seeds.

Arms, all from scratch on the 32 px canvas digits (``trap_common.py``), same recipe and budget:

* ``cutmix``: the baseline;
* ``smmix``: SMMix with all three terms from the first step;
* ``smmix`` + warm-up ``<knobs>:<E>``: during epochs 0..E-1 SMMix batches use random windows
  (``rand``: ``max_min_regions=False``) and / or no L_con (``nocon``: ``consistency_loss_weight=0``);
  from epoch E on, the configured SMMix. Implemented as a ``TrainerCallback`` that flips
  ``trainer.args`` (the trainer reads them at every step).

Take-off epoch: the first epoch whose held-out clean top-1 reaches 0.2 (chance 0.1). A fix passes if
every seed takes off no later than CutMix's latest seed, and its final seed spread (std, range) is no
wider than CutMix's.

    python experiments/trap_fix.py --seeds 0 1 2 3 4 --epochs 20 --warmups rand+nocon:5

Writes ``experiments/results/trap_fix/``: one JSON per run, ``summary.md``, ``trap_fix.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

EXPERIMENT = "trap_fix"


def arms_for(warmups: list[str]) -> list[tuple[str, str]]:
    return [("cutmix", "none"), ("smmix", "none")] + [("smmix", warmup) for warmup in warmups]


def summary(runs: list[dict], arms: list[tuple[str, str]], epochs: int) -> str:
    from trap_common import CHANCE_LOSS, arm_label, loss_takeoff_epoch, mean_std, select, takeoff_epoch

    lines = [
        f"# SMMix's early-training trap and warm-up fixes ({epochs} epochs, from scratch, 32 px canvas digits)",
        "",
        "Take-off: first epoch with held-out clean top-1 ≥ 0.2 (chance 0.1); L_cls take-off: first epoch whose mean "
        f"training L_cls is ≤ {CHANCE_LOSS - 0.03:.3f} (0.03 below chance). L_cls at epoch 5: the epoch's mean "
        f"training mixed-label CE (chance {CHANCE_LOSS:.3f}). Final top-1: held-out clean top-1 (360 images) after "
        "the last epoch, mean ± std over seeds, percent; range = max − min over seeds.",
        "",
        "| arm | n | take-off epoch per seed | mean / latest | L_cls take-off per seed | mean / latest | "
        "L_cls at epoch 5 | final top-1 | range | per seed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, warmup in arms:
        chosen = sorted(select(runs, variant, warmup, epochs), key=lambda run: run["seed"])
        if not chosen:
            continue
        columns = []
        for takeoffs in (
            [takeoff_epoch(run["history"]) for run in chosen],
            [loss_takeoff_epoch(run["history"]) for run in chosen],
        ):
            late = "never" if None in takeoffs else f"{sum(takeoffs) / len(takeoffs):.1f} / {max(takeoffs)}"
            columns.append(f"{', '.join(str(t) for t in takeoffs)} | {late}")
        finals = [run["clean_top1"] for run in chosen]
        at5 = [run["history"][4]["loss_cls"] for run in chosen if len(run["history"]) >= 5]
        per_seed = ", ".join(f"{100 * value:.1f}" for value in finals)
        lines.append(
            f"| {arm_label(variant, warmup)} | {len(chosen)} | {columns[0]} | {columns[1]} | "
            f"{mean_std(at5, 1.0, 3)} | {mean_std(finals)} | {100 * (max(finals) - min(finals)):.1f} | {per_seed} |"
        )
    lines.append("")
    return "\n".join(lines)


def plot(runs: list[dict], arms: list[tuple[str, str]], epochs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trap_common import arm_label, select

    figure, axes = plt.subplots(2, len(arms), figsize=(3.6 * len(arms), 6.2), sharey="row", squeeze=False)
    for column, (variant, warmup) in enumerate(arms):
        chosen = sorted(select(runs, variant, warmup, epochs), key=lambda run: run["seed"])
        for run in chosen:
            xs = [entry["epoch"] for entry in run["history"]]
            axes[0, column].plot(xs, [entry["loss_cls"] for entry in run["history"]], lw=1, label=f"seed {run['seed']}")
            axes[1, column].plot(xs, [entry["clean_top1"] for entry in run["history"]], lw=1)
        axes[0, column].set_title(arm_label(variant, warmup), fontsize=9)
        axes[1, column].set_xlabel("epoch")
        for row in range(2):
            axes[row, column].grid(alpha=0.3)
    axes[0, 0].set_ylabel("training L_cls")
    axes[1, 0].set_ylabel("held-out clean top-1")
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--warmups", nargs="+", default=["rand+nocon:5"], help="Warm-up specs (trap_common.parse_warmup)."
    )
    parser.add_argument("--summary_only", action="store_true", help="Rebuild summary.md and the plot from stored runs.")
    args = parser.parse_args(argv)
    from trap_common import RESULTS, load_runs, run_arms

    arms = arms_for(args.warmups)
    runs = load_runs(EXPERIMENT) if args.summary_only else run_arms(EXPERIMENT, arms, args.seeds, [args.epochs])
    out = RESULTS / EXPERIMENT
    (out / "summary.md").write_text(summary(runs, arms, args.epochs))
    plot(runs, arms, args.epochs, out / "trap_fix.png")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
