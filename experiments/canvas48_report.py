#!/usr/bin/env python
"""the 48 px canvas runs (GPU, 80 epochs): convergence, budget curve, trap, hit rates, Tab. 7 / 8 rows.

Reads the JSON runs that ``pool.py --plan canvas48`` and ``--plan tables48`` wrote (no training):

* ``results/canvas48_trap/``: CutMix, SMMix (all terms), SMMix + motivation warm-up (25% of epochs), 80 epochs;
* ``results/canvas48_budget/``: the same arms at 20 and 40 epochs (the 80-epoch point is the trap runs);
* ``results/canvas48_tables/``: further SMMix variants at 80 epochs (Tab. 7 rows, consistency target, δ);
  every variant found there gets a row, with its n.

    python experiments/canvas48_report.py

Writes ``experiments/results/canvas48_report/``: ``summary.md``, ``budget_curve.png``, ``trap.png``,
``hit_rates.png``. Intervals are 95% Welch t intervals on the difference of two means (unequal variances).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_stats import PAPER_TAB7, TAB7, Runs, finals, mean_std_signed, pct, per_seed, welch, welch_text

REGIME = "canvas48"
ARMS = ["cutmix", "smmix", "smmix_warmup25"]
BUDGETS = [20, 40, 80]
LONG = 80
HIT_EPOCHS = [1, 2, 3, 5, 10, 20, 40, 80]
HIT_KEYS = ("src_hit", "tgt_avoid", "src_cover", "tgt_occlude", "clean_top1")
HIT_KEYS += tuple(f"{key}_random" for key in HIT_KEYS[:4])
LABELS = {
    "cutmix": "CutMix",
    "smmix": "SMMix (all terms)",
    "smmix_warmup25": "SMMix + motivation warm-up 25%",
    "maxmin_only": "max-min only",
    "maxmin_con": "max-min + L_con",
    "maxmin_fine": "max-min + L_fine",
    "smmix_probs": "SMMix, L_con target = λ-mix of probabilities",
    "delta_u01": "SMMix, δ ~ U(0, 1)",
    "smmix_region_head": "SMMix, separate linear region head",
}
COLOURS = {"cutmix": "tab:blue", "smmix": "tab:red", "smmix_warmup25": "tab:green"}
KNOWN_TABLE_VARIANTS = {"maxmin_only", "maxmin_con", "maxmin_fine", "smmix_probs", "delta_u01"}


def label(variant: str) -> str:
    return LABELS.get(variant, variant)


def load(experiment: str) -> Runs:
    from trap_common import load_runs

    runs = [run for run in load_runs(experiment) if run.get("regime") == REGIME]
    return sorted(runs, key=lambda run: (run["variant"], run["epochs"], run["seed"]))


def pick(runs: Runs, variant: str, epochs: int, seeds: set[int] | None = None) -> Runs:
    from trap_common import select

    chosen = select(runs, variant, "none", epochs)
    return [run for run in chosen if seeds is None or run["seed"] in seeds]


def regime_text(all_runs: Runs) -> list[str]:
    devices = sorted({str(run.get("device", "?")) for run in all_runs})
    codes = sorted({str(run.get("code", "?")) for run in all_runs})
    long = [run["train_seconds"] for run in all_runs if run["epochs"] == LONG]
    seconds = f"median {statistics.median(long):.0f} s (range {min(long):.0f}-{max(long):.0f} s)" if long else "–"
    return [
        "# 48 px canvas digits, from scratch: convergence, budget curve, trap, hit rates, Tab. 7 / 8 rows",
        "",
        "Regime `canvas48`: 16-24 px digits at a random place on a 48 px canvas (noise 0.1), 1,437 training digits "
        "× 3 renderings, 360 held-out digits; the demo's ViT (4 layers, width 128, 4 heads, MLP 256, patch 8: "
        "6 × 6 tokens); the demo recipe (AdamW lr 2e-3, wd 0.05, cosine, 50 warm-up steps, batch 64, label "
        "smoothing 0.1, Mixup at p = 0.5 alternating with CutMix / SMMix, random resized crop 0.8-1); SMMix window "
        "sides drawn by the official sampling (1-4 tokens, uniform). fp32, from scratch.",
        "",
        f"Runs: {len(all_runs)}; device(s): {', '.join(devices)}; code commit(s): {', '.join(codes)}; "
        f"80-epoch training time per run: {seconds} (16 runs at once on the device).",
        "",
        "All accuracies are held-out clean top-1 (360 canvases) in percent; mean ± std over seeds (sample std); "
        "`sN: x` = seed N's value. Intervals: 95% Welch t interval on the difference of two means (unequal "
        "variances), in points.",
        "",
    ]


def convergence_section(long_runs: dict[str, Runs]) -> list[str]:
    from trap_common import last_fraction_change

    lines = [
        "## 1. Convergence check (80-epoch runs)",
        "",
        "Δlast20%: clean top-1 at epoch 80 minus at epoch 64 (`last_fraction_change`, the last 20% of epochs). "
        "Section 1's criterion: |Δ| < 1 point.",
        "",
        "| arm | n | Δlast20% per seed (points) | mean ± std | seeds with abs(Δ) < 1 point |",
        "|---|---|---|---|---|",
    ]
    counts: dict[str, tuple[int, int]] = {}
    for variant, runs in long_runs.items():
        if not runs:
            continue
        changes = [last_fraction_change(run) for run in runs]
        flat = sum(abs(change) < 0.01 for change in changes)
        counts[variant] = (flat, len(runs))
        cells = ", ".join(f"s{run['seed']}: {pct(change, True)}" for run, change in zip(runs, changes, strict=True))
        lines.append(
            f"| {label(variant)} | {len(runs)} | {cells} | {mean_std_signed(changes)} | {flat} of {len(runs)} |"
        )
    lines.append("")
    if "cutmix" in counts:
        flat, total = counts["cutmix"]
        lines.append(f"CutMix: {flat} of {total} seeds change by less than 1 point over the last 20% of epochs.")
    flat_all = sum(flat for flat, _ in counts.values())
    total_all = sum(total for _, total in counts.values())
    lines += [
        "",
        f"Reading: {flat_all} of {total_all} 80-epoch runs meet the criterion; "
        + ("none of the arms has all its seeds converged." if all(f < t for f, t in counts.values()) else "see table."),
        "",
    ]
    return lines


def budget_section(budget_runs: Runs, trap_runs: Runs) -> list[str]:
    from trap_common import last_fraction_change, mean_std

    lines = [
        "## 2. Clean top-1 against the epoch budget",
        "",
        "20 and 40 epochs: `canvas48_budget` (seeds 0-2); 80 epochs: `canvas48_trap` (seeds 0-4), and the same "
        "restricted to seeds 0-2. Each budget has its own cosine schedule. Difference: this arm − CutMix at the same "
        "budget, with its 95% Welch t interval.",
        "",
        "| budget | arm | n | top-1 | per seed | Δlast20% (mean) | − CutMix [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    rows: list[tuple[str, int, set[int] | None]] = [("20", 20, None), ("40", 40, None), ("80", 80, None)]
    rows.append(("80 (seeds 0-2)", 80, {0, 1, 2}))
    summary: dict[tuple[str, str], list[float]] = {}
    for name, epochs, seeds in rows:
        source = trap_runs if epochs == LONG else budget_runs
        base = finals(pick(source, "cutmix", epochs, seeds))
        for variant in ARMS:
            runs = pick(source, variant, epochs, seeds)
            if not runs:
                continue
            values = finals(runs)
            summary[name, variant] = values
            change = statistics.mean(last_fraction_change(run) for run in runs)
            diff = "–" if variant == "cutmix" else welch_text(base, values)
            lines.append(
                f"| {name} | {label(variant)} | {len(runs)} | {mean_std(values)} | {per_seed(runs)} | "
                f"{pct(change, True)} | {diff} |"
            )
    lines.append("")
    reading = []
    for name, _, _ in rows[:3]:
        cut, smm = summary.get((name, "cutmix")), summary.get((name, "smmix"))
        if cut and smm:
            result = welch(cut, smm)
            excludes = result is not None and (result[1] > 0 or result[2] < 0)
            reading.append(
                f"{name} epochs: SMMix − CutMix {pct(statistics.mean(smm) - statistics.mean(cut), True)} points"
                + (" (interval excludes 0)" if excludes else " (interval includes 0)")
            )
    lines += ["Reading: " + "; ".join(reading) + ".", ""]
    return lines


def trap_section(trap_runs: Runs) -> list[str]:
    from trap_common import loss_takeoff_epoch, mean_std, takeoff_epoch

    lines = [
        "## 3. The trap at 80 epochs",
        "",
        "Take-off: first epoch with held-out clean top-1 ≥ 20% (chance 10%); L_cls take-off: first epoch whose mean "
        "training L_cls is 0.03 below chance (ln 10). Range: max − min of the final top-1 over seeds.",
        "",
        "| arm | n | take-off per seed | mean / latest | L_cls take-off per seed | mean / latest "
        "| final top-1 per seed | final top-1 | range |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    stats: dict[str, dict[str, Any]] = {}
    for variant in ARMS:
        runs = pick(trap_runs, variant, LONG)
        if not runs:
            continue
        takeoffs = [takeoff_epoch(run["history"]) for run in runs]
        loss_takeoffs = [loss_takeoff_epoch(run["history"]) for run in runs]
        values = finals(runs)
        stats[variant] = {
            "takeoff": takeoffs,
            "loss_takeoff": loss_takeoffs,
            "finals": values,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "range": max(values) - min(values),
        }
        columns = []
        for epochs in (takeoffs, loss_takeoffs):
            known = [epoch for epoch in epochs if epoch is not None]
            late = "never" if None in epochs else f"{statistics.mean(known):.1f} / {max(known)}"
            columns.append(f"{', '.join(str(epoch) for epoch in epochs)} | {late}")
        lines.append(
            f"| {label(variant)} | {len(runs)} | {columns[0]} | {columns[1]} | "
            f"{', '.join(pct(value) for value in values)} | {mean_std(values)} | {pct(stats[variant]['range'])} |"
        )
    lines.append("")
    if "cutmix" not in stats:
        return lines
    cut = stats["cutmix"]
    latest = {key: max((e for e in cut[key] if e is not None), default=None) for key in ("takeoff", "loss_takeoff")}
    lines += [
        f"The test (from the canvas32 fix): every seed takes off no later than CutMix's latest seed (epoch "
        f"{latest['takeoff']} by clean top-1, {latest['loss_takeoff']} by L_cls), and the final spread is no wider "
        f"than CutMix's (std {pct(cut['std'])}, range {pct(cut['range'])}).",
        "",
    ]
    for variant in ARMS[1:]:
        if variant not in stats:
            continue
        arm = stats[variant]
        on_time = {
            key: None not in arm[key] and latest[key] is not None and max(arm[key]) <= latest[key]
            for key in ("takeoff", "loss_takeoff")
        }
        narrow_std, narrow_range = arm["std"] <= cut["std"], arm["range"] <= cut["range"]
        lines.append(
            f"- {label(variant)}: every seed takes off no later than CutMix's latest seed: "
            f"{'yes' if on_time['takeoff'] else 'no'} by clean top-1, {'yes' if on_time['loss_takeoff'] else 'no'} "
            f"by L_cls. Final spread no wider than CutMix's: std {pct(arm['std'])} vs {pct(cut['std'])} "
            f"({'yes' if narrow_std else 'no'}), range {pct(arm['range'])} vs {pct(cut['range'])} "
            f"({'yes' if narrow_range else 'no'}). Passes: "
            f"{'yes' if on_time['takeoff'] and on_time['loss_takeoff'] and narrow_std and narrow_range else 'no'}."
        )
    lines += ["", "Final top-1 differences (95% Welch t interval, points):", ""]
    lines += ["| comparison | n | difference [95% CI] |", "|---|---|---|"]
    pairs = [("smmix", "cutmix"), ("smmix_warmup25", "cutmix"), ("smmix_warmup25", "smmix")]
    for b, a in pairs:
        if a in stats and b in stats:
            n = f"{len(stats[b]['finals'])} vs {len(stats[a]['finals'])}"
            lines.append(f"| {label(b)} − {label(a)} | {n} | {welch_text(stats[a]['finals'], stats[b]['finals'])} |")
    late = [
        f"{label(variant)} {sum(e is None or e > 15 for e in stats[variant]['takeoff'])} of "
        f"{len(stats[variant]['takeoff'])}"
        for variant in ARMS
        if variant in stats
    ]
    lines += [
        "",
        "Reading: seeds that take off after epoch 15 (clean top-1): " + ", ".join(late) + ".",
        "",
    ]
    return lines


def hit_section(trap_runs: Runs) -> list[str]:
    from trap_common import epoch_curve

    arms = [variant for variant in ARMS if pick(trap_runs, variant, LONG)]
    if "cutmix" not in arms:
        return []
    short = {"cutmix": "C", "smmix": "S", "smmix_warmup25": "W"}
    curves = {(variant, key): epoch_curve(pick(trap_runs, variant, LONG), key) for variant in arms for key in HIT_KEYS}
    order = " / ".join(short[variant] for variant in arms)
    ns = ", ".join(
        f"{short[variant]} = {label(variant)} (n = {len(pick(trap_runs, variant, LONG))})" for variant in arms
    )
    lines = [
        "## 4. Window hit rates over training (80 epochs)",
        "",
        "At each epoch end, the model's motivated forward (eval mode, Eq. 6 scores) on the 360 held-out canvases, "
        "window sides 1-4 tokens of the 6 × 6 grid, equally weighted. `src hit`: the max-score window (SMMix's "
        "source window) overlaps the digit; `tgt avoid`: the min-score window (SMMix's target window) misses the "
        "digit; `src cover` / `tgt occlude`: share of the digit's tokens inside that window; `rand`: exact "
        "expectation for a uniformly placed window. CutMix-trained models never use their windows in training. "
        f"Mean over seeds, percent; {ns}.",
        "",
        f"| epoch | src hit: {order} / rand | tgt avoid: {order} / rand | src cover: {order} / rand | "
        f"tgt occlude: {order} / rand | clean top-1: {order} |",
        "|---|---|---|---|---|---|",
    ]

    def at(variant: str, key: str, epoch: int) -> float | None:
        epochs, means, _ = curves[variant, key]
        return means[epochs.index(epoch)] if epoch in epochs else None

    for epoch in HIT_EPOCHS:
        cells = []
        for key in ("src_hit", "tgt_avoid", "src_cover", "tgt_occlude"):
            values = [at(variant, key, epoch) for variant in arms] + [at("cutmix", f"{key}_random", epoch)]
            cells.append(" / ".join("–" if value is None else f"{100 * value:.1f}" for value in values))
        values = [at(variant, "clean_top1", epoch) for variant in arms]
        cells.append(" / ".join("–" if value is None else f"{100 * value:.1f}" for value in values))
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    lines.append("")
    reading = []
    for variant in arms:
        epochs, avoid, _ = curves[variant, "tgt_avoid"]
        _, avoid_rand, _ = curves[variant, "tgt_avoid_random"]
        _, occlude, _ = curves[variant, "tgt_occlude"]
        _, occlude_rand, _ = curves[variant, "tgt_occlude_random"]
        above = sum(a > r for a, r in zip(avoid, avoid_rand, strict=True))
        below = sum(o < r for o, r in zip(occlude, occlude_rand, strict=True))
        reading.append(
            f"{short[variant]}: tgt avoid above random in {above} of {len(epochs)} epochs, "
            f"tgt occlude below random in {below} of {len(epochs)}"
        )
    lines += ["Reading (mean over seeds): " + "; ".join(reading) + ".", ""]
    return lines


def variant_rows(rows: list[tuple[str, Runs]], base_name: str) -> list[str]:
    """The first row is the reference: the others get their difference to it (Welch) and per shared seed."""
    from trap_common import mean_std

    lines = [
        f"| row | n | top-1 | per seed | − {base_name} [95% CI] | − {base_name}, per shared seed |",
        "|---|---|---|---|---|---|",
    ]
    reference = rows[0][1]
    by_seed = {run["seed"]: float(run["clean_top1"]) for run in reference}
    for index, (name, runs) in enumerate(rows):
        if not runs:
            lines.append(f"| {name} | 0 | – | – | – | – |")
            continue
        values = finals(runs)
        if index == 0:
            diff, paired = "–", "–"
        else:
            diff = welch_text(finals(reference), values)
            shared = [run for run in runs if run["seed"] in by_seed]
            paired = ", ".join(
                f"s{run['seed']}: {pct(run['clean_top1'] - by_seed[run['seed']], True)}" for run in shared
            )
        lines.append(f"| {name} | {len(runs)} | {mean_std(values)} | {per_seed(runs)} | {diff} | {paired or '–'} |")
    return lines


def tables_section(trap_runs: Runs, table_runs: Runs) -> list[str]:
    seeds = {0, 1, 2}
    source = {"cutmix": trap_runs, "smmix": trap_runs}
    cut3 = finals(pick(trap_runs, "cutmix", LONG, seeds))
    lines = [
        "## 5. Tab. 7, consistency target, Tab. 8 (80 epochs)",
        "",
        "CutMix and SMMix (all terms) rows: `canvas48_trap` seeds 0-2 (and all 5 seeds below them); the other rows: "
        "`canvas48_tables`. Difference: row − the reference row (seeds 0-2), 95% Welch t interval, points.",
        "",
        "### Tab. 7 (paper: DeiT-S on ImageNet)",
        "",
        "| row | n | top-1 | per seed | − CutMix (seeds 0-2) [95% CI] | paper |",
        "|---|---|---|---|---|---|",
    ]
    from trap_common import mean_std

    for variant in TAB7:
        runs = pick(source.get(variant, table_runs), variant, LONG, seeds)
        values = finals(runs)
        diff = "–" if variant == "cutmix" or not runs else welch_text(cut3, values)
        cells = f"{mean_std(values)} | {per_seed(runs)}" if runs else "– | –"
        lines.append(f"| {label(variant)} | {len(runs)} | {cells} | {diff} | {PAPER_TAB7[variant]} |")
    for variant in ("cutmix", "smmix"):
        runs = pick(trap_runs, variant, LONG)
        values = finals(runs)
        base = finals(pick(trap_runs, "cutmix", LONG))
        diff = "–" if variant == "cutmix" else f"{welch_text(base, values)} ({len(values)} vs {len(base)})"
        lines.append(
            f"| {label(variant)}, all seeds | {len(runs)} | {mean_std(values)} | {per_seed(runs)} | {diff} | |"
        )
    lines += ["", "### Consistency target (L_con): λ-mix of logits (official, the SMMix row) vs of probabilities", ""]
    lines += variant_rows(
        [
            ("logits (SMMix row, seeds 0-2)", pick(trap_runs, "smmix", LONG, seeds)),
            ("probabilities (`smmix_probs`)", pick(table_runs, "smmix_probs", LONG)),
        ],
        "logits",
    )
    lines += ["", "### Tab. 8: window side ratio δ", ""]
    lines += variant_rows(
        [
            (
                "δ ~ U(0.25, 0.75), official sampling: sides 1-4 uniform (SMMix row, seeds 0-2)",
                pick(trap_runs, "smmix", LONG, seeds),
            ),
            ("δ ~ U(0, 1) (`delta_u01`)", pick(table_runs, "delta_u01", LONG)),
        ],
        "official",
    )
    others = sorted({run["variant"] for run in table_runs} - KNOWN_TABLE_VARIANTS - {"cutmix", "smmix"})
    lines += ["", "### Other variants found in `canvas48_tables`", ""]
    if others:
        rows = []
        for variant in others:
            runs = sorted([run for run in table_runs if run["variant"] == variant], key=lambda run: run["seed"])
            devices = ", ".join(sorted({str(run.get("device", "?")) for run in runs}))
            epochs = ", ".join(str(e) for e in sorted({run["epochs"] for run in runs}))
            rows.append((f"{label(variant)} ({epochs} epochs; {devices})", runs))
        reference = ("SMMix (all terms), seeds 0-2", pick(trap_runs, "smmix", LONG, seeds))
        lines += variant_rows([reference, *rows], "SMMix")
    else:
        lines.append("None.")
    smm_values = [(label(v), finals(pick(table_runs, v, LONG))) for v in ("maxmin_only", "maxmin_con", "maxmin_fine")]
    sizes = "/".join(str(len(values)) for _, values in smm_values)
    includes = [name for name, values in smm_values if (r := welch(cut3, values)) is not None and r[1] <= 0 <= r[2]]
    lines += [
        "",
        f"Reading: with n = {sizes} per ablation row, {len(includes)} of {len(smm_values)} Tab. 7 ablation rows have a "
        "− CutMix interval that includes 0.",
        "",
    ]
    return lines


def plot_budget(budget_runs: Runs, trap_runs: Runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.2))
    counts = {}
    for offset, variant in zip((-1.5, 0.0, 1.5), ARMS, strict=True):
        xs, means, stds = [], [], []
        for budget in BUDGETS:
            runs = pick(trap_runs if budget == LONG else budget_runs, variant, budget)
            if not runs:
                continue
            values = [100 * value for value in finals(runs)]
            counts.setdefault(budget, set()).add(len(values))
            x = budget + offset * budget / 40
            axis.scatter([x] * len(values), values, color=COLOURS[variant], s=14, alpha=0.5, zorder=3)
            xs.append(x)
            means.append(statistics.mean(values))
            stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, color=COLOURS[variant], label=label(variant))
    axis.set_xscale("log")
    ticks = [f"{budget}\n(n={'/'.join(str(n) for n in sorted(counts.get(budget, ())))})" for budget in BUDGETS]
    axis.set_xticks(BUDGETS, ticks)
    axis.minorticks_off()
    axis.set_xlabel("epoch budget (from scratch)")
    axis.set_ylabel("held-out clean top-1 (%)")
    axis.set_title("48 px canvas: mean ± std over seeds, dots = seeds", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_trap(trap_runs: Runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trap_common import CHANCE_LOSS, loss_takeoff_epoch, takeoff_epoch

    figure, axes = plt.subplots(2, len(ARMS), figsize=(4.2 * len(ARMS), 6.4), sharey="row", squeeze=False)
    for column, variant in enumerate(ARMS):
        for index, run in enumerate(pick(trap_runs, variant, LONG)):
            colour = f"C{index}"
            xs = [entry["epoch"] for entry in run["history"]]
            top1 = [100 * entry["clean_top1"] for entry in run["history"]]
            loss = [entry["loss_cls"] for entry in run["history"]]
            axes[0, column].plot(xs, top1, lw=1, color=colour, label=f"seed {run['seed']}")
            axes[1, column].plot(xs, loss, lw=1, color=colour)
            epoch = takeoff_epoch(run["history"])
            if epoch is not None:
                axes[0, column].plot(epoch, top1[xs.index(epoch)], "o", color=colour, ms=6, mec="black")
            epoch = loss_takeoff_epoch(run["history"])
            if epoch is not None:
                axes[1, column].plot(epoch, loss[xs.index(epoch)], "o", color=colour, ms=6, mec="black")
        axes[0, column].axhline(20, color="grey", ls="--", lw=1)
        axes[1, column].axhline(CHANCE_LOSS, color="grey", ls="--", lw=1)
        axes[0, column].set_title(label(variant), fontsize=10)
        axes[1, column].set_xlabel("epoch")
        for row in range(2):
            axes[row, column].grid(alpha=0.3)
    axes[0, 0].set_ylabel("held-out clean top-1 (%)\n(dot: take-off, ≥ 20%)")
    axes[1, 0].set_ylabel("training L_cls\n(dot: 0.03 below ln 10)")
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_hits(trap_runs: Runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trap_common import epoch_curve

    panels = [
        ("src_hit", "max window overlaps digit (src hit)"),
        ("tgt_avoid", "min window misses digit (tgt avoid)"),
        ("tgt_occlude", "digit share under min window (tgt occlude)"),
        ("clean_top1", "held-out clean top-1"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    for axis, (key, title) in zip(axes, panels, strict=True):
        for variant in ARMS:
            runs = pick(trap_runs, variant, LONG)
            if not runs:
                continue
            xs, mean, _ = epoch_curve(runs, key)
            axis.plot(
                xs, [100 * v for v in mean], color=COLOURS[variant], lw=1.8, label=f"{label(variant)} (n={len(runs)})"
            )
        if key != "clean_top1":
            xs, rand, _ = epoch_curve(pick(trap_runs, "cutmix", LONG), f"{key}_random")
            axis.plot(xs, [100 * v for v in rand], color="grey", ls="--", lw=1.2, label="random window")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("epoch")
        axis.set_ylabel("%")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    from trap_common import RESULTS

    trap_runs, budget_runs, table_runs = load("canvas48_trap"), load("canvas48_budget"), load("canvas48_tables")
    long_runs = {variant: pick(trap_runs, variant, LONG) for variant in ARMS}
    known = [*TAB7, "smmix_probs", "delta_u01"]
    found = {run["variant"] for run in table_runs}
    for variant in [v for v in known if v in found] + sorted(found - set(known)):
        long_runs[variant] = pick(table_runs, variant, LONG)
    lines = regime_text(trap_runs + budget_runs + table_runs)
    lines += convergence_section(long_runs)
    lines += budget_section(budget_runs, trap_runs)
    lines += trap_section(trap_runs)
    lines += hit_section(trap_runs)
    lines += tables_section(trap_runs, table_runs)
    out = RESULTS / "canvas48_report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("\n".join(lines))
    plot_budget(budget_runs, trap_runs, out / "budget_curve.png")
    plot_trap(trap_runs, out / "trap.png")
    plot_hits(trap_runs, out / "hit_rates.png")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
