"""canvas32 warm-started, short budgets: clean top-1 against the epoch budget (2-40 epochs), and Tab. 7 at 4.

Every run starts from the warm start (:func:`experiments.regime.pretrain`) and fine-tunes at lr 1e-3 with a
cosine schedule over its own budget. Arms: CutMix, SMMix and SMMix with the random-window warm-up for 25% of the
epochs (``rand+nocon:25%``: ``motivation_warmup_epochs`` = budget / 4); the Tab. 7 rows at 4 epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.runner import RunSpec
from experiments.stats import finals, last_fraction_change, mean_std, select, welch_text
from experiments.store import runs as kind_runs
from experiments.tables import PAPER_TAB7, TAB7, figure, label, table

NAME = "budget32"
TITLE = "canvas32 warm-started: clean top-1 against the epoch budget"
BUDGETS = [2, 4, 8, 16, 40]
SEEDS = range(3)
ARMS = [("cutmix", "none"), ("smmix", "none"), ("smmix", "rand+nocon:25%")]
TAB7_EPOCHS = 4


def plan(options: Any) -> list[RunSpec]:
    seeds = options.seeds if options.seeds is not None else SEEDS
    specs = [
        RunSpec("canvas32", variant, seed, epochs, warmup=warmup, learning_rate=1e-3, warm_start=True)
        for epochs in options.epochs or BUDGETS
        for seed in seeds
        for variant, warmup in ARMS
    ]
    rows = [variant for variant in TAB7 if variant not in ("cutmix", "smmix")]
    specs += [RunSpec("canvas32", v, s, TAB7_EPOCHS, learning_rate=1e-3, warm_start=True) for s in seeds for v in rows]
    return specs


def report(records: list[dict]) -> list[str]:
    runs = kind_runs(records)
    budgets = sorted({run["epochs"] for run in runs if run["variant"] == "cutmix"})
    if not budgets:
        return [f"## {TITLE}", "", "No runs stored.", ""]
    header = ["arm", *[f"{budget} epochs" for budget in budgets]]
    rows, changes = [], []
    for variant, warmup in ARMS:
        cells = [select(runs, variant, budget, warmup) for budget in budgets]
        rows.append([label(variant, warmup), *[f"{mean_std(finals(c))} ({len(c)})" if c else "–" for c in cells]])
        changes.append(
            [label(variant, warmup), *[mean_std([last_fraction_change(r) for r in c]) if c else "–" for c in cells]]
        )
    top, cut, smm = budgets[-1], select(runs, "cutmix", budgets[-1]), select(runs, "smmix", budgets[-1])
    fix = select(runs, "smmix", top, "rand+nocon:25%")
    cut_changes = ", ".join(f"{100 * last_fraction_change(run):+.1f}" for run in cut)
    lines = [
        f"## {TITLE}",
        "",
        "```bash",
        "python -m experiments run budget32",
        "```",
        "",
        "From scratch nothing in canvas32 converges within 20 epochs, so these runs start from the warm start (the "
        "same ViT trained 15 epochs without mixing on the full-frame digits) and fine-tune on the canvas at lr 1e-3, "
        "each budget with its own cosine schedule. Held-out clean top-1, percent, mean ± std (n seeds):",
        "",
        *table(header, rows),
        "",
        "Δlast20%: clean top-1 at the end minus at 80% of the epochs (the convergence criterion is |Δ| < 1 point):",
        "",
        *table(header, changes),
        "",
        *figure("budget32.png", "clean top-1 against the epoch budget, canvas32 warm-started"),
        f"- **Not converged at {top} epochs.** CutMix's seeds still gain {cut_changes} points over the last 20% of "
        "the epochs.",
        f"- **SMMix does not win at any budget.** At {top} epochs SMMix − CutMix is "
        f"{welch_text(finals(cut), finals(smm))} points (95% Welch interval); with the warm-up "
        f"{welch_text(finals(cut), finals(fix))}.",
        "",
        f"### Tab. 7 rows at {TAB7_EPOCHS} epochs",
        "",
    ]
    rows = []
    for variant in TAB7:
        chosen = select(runs, variant, TAB7_EPOCHS)
        values = finals(chosen)
        rows.append(
            [
                label(variant),
                len(chosen),
                mean_std(values),
                ", ".join(f"{100 * v:.1f}" for v in values),
                PAPER_TAB7[variant],
            ]
        )
    lines += table(["row", "n", "clean top-1", "per seed", "paper (DeiT-S, ImageNet)"], rows)
    means = [float(row[2].split(" ± ")[0]) for row in rows]
    lines += [
        "",
        f"All five rows lie within {max(means) - min(means):.1f} points of each other, inside the seed spread, at a "
        "budget far from converged: the paper's ordering (each term adds 0.2-0.6 points on DeiT-S) is neither "
        "confirmed nor contradicted here. The same rows at convergence are in the converge32 section.",
        "",
    ]
    return lines


def figures(records: list[dict], directory: Path) -> None:
    from experiments import figures as plots

    runs = kind_runs(records)
    arms = {label(v, w): {budget: select(runs, v, budget, w) for budget in BUDGETS} for v, w in ARMS}
    plots.budget_curve(arms, directory / "budget32.png", "epoch budget (fine-tuning)")
