#!/usr/bin/env python
"""the warm-started 32 px canvas runs (80-200 epochs): convergence, CutMix vs SMMix, where SMMix's windows matter.

Reads the JSON runs that ``pool.py --plan converge32 --regime canvas32 --device cpu`` wrote (no training):
CutMix, SMMix (all terms), SMMix with oracle windows scored by the digit's ink (``ink_oracle.py``) and
SMMix with random windows, all fine-tuned for 80 epochs from the full-frame digits checkpoint; then
CutMix and SMMix for 160 and 200 epochs, and SMMix with the motivation warm-up (random windows and no L_con
for the first 25% of the epochs, ``motivation_warmup_epochs``) for 80 and 200 epochs, and its CutMix form
(``motivation_warmup_mixing="cutmix"``: the first 25% of the epochs are CutMix batches, ``pool.py --plan
converge32_fix``) for 200 epochs. Section 5 reads ``pool.py --plan tables32``: the paper's Tab. 7 rows, the
consistency target and the region head at 200 epochs.

The three SMMix arms differ only in where the windows come from (same window sides, same losses, same
clean forward), so they split SMMix's result into the part due to its attention (attention − random
windows), the part the attention leaves on the table (oracle − attention) and the rest of the method
(random windows − CutMix: token-aligned squares of 21% of the image on average, placed independently
in source and target, with L_fine and L_con, against CutMix's λ ~ Beta(1, 1) box at the same place in
both images).

    python experiments/converge32_report.py

Writes ``experiments/results/converge32_report/``: ``summary.md`` and ``curves.png``.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_stats import (
    PAPER_TAB7,
    TAB7,
    Runs,
    finals,
    mean_std_signed,
    paired_text,
    pct,
    per_seed,
    variance_ratio_text,
    welch,
    welch_text,
)

EXPERIMENT = "converge32"
BUDGETS = [80, 160, 200]
ARMS = [
    "cutmix",
    "smmix",
    "smmix_ink_oracle",
    "random_windows",
    "smmix_warmup25",
    "smmix_warmup25_cutmix",
    "smmix_warmup25_cutmix_random",
]
WARMUP_ARMS = ["smmix_warmup25", "smmix_warmup25_cutmix", "smmix_warmup25_cutmix_random"]
LABELS = {
    "cutmix": "CutMix",
    "smmix": "SMMix (attention windows)",
    "smmix_ink_oracle": "SMMix, oracle windows (digit ink)",
    "random_windows": "SMMix, random windows",
    "smmix_warmup25": "SMMix + random-window warm-up 25%",
    "smmix_warmup25_cutmix": "SMMix + CutMix warm-up 25%",
    "smmix_warmup25_cutmix_random": "SMMix + two-part warm-up 25% (CutMix, then random windows: the default)",
    "maxmin_only": "max-min only",
    "maxmin_con": "max-min + L_con",
    "maxmin_fine": "max-min + L_fine",
    "smmix_probs": "SMMix, L_con target = λ-mix of probabilities",
    "smmix_region_head": "SMMix, separate linear region head",
    "delta_u01": "SMMix, window side ratio δ ~ U(0, 1) (Tab. 8)",
    "delta_half": "SMMix, window side ratio δ = 0.5 (Tab. 8)",
}
# Section 5: the paper's Tab. 7 rows (its ImageNet DeiT-S top-1 beside them), then the consistency target and the
# region head, each against SMMix with all three terms (the official code's logits target and shared head).
DESIGN_ROWS = ["smmix_probs", "smmix_region_head", "delta_u01", "delta_half"]
COLOURS = {
    "cutmix": "tab:blue",
    "smmix": "tab:red",
    "smmix_ink_oracle": "tab:purple",
    "random_windows": "tab:grey",
    "smmix_warmup25": "tab:orange",
    "smmix_warmup25_cutmix": "tab:green",
    "smmix_warmup25_cutmix_random": "tab:brown",
}
SHORT = {
    "cutmix": "C",
    "smmix": "S",
    "smmix_ink_oracle": "O",
    "random_windows": "R",
    "smmix_warmup25": "W",
    "smmix_warmup25_cutmix": "K",
    "smmix_warmup25_cutmix_random": "T",
}
STYLES = {80: "-", 160: "--", 200: ":"}
HIT_EPOCHS = [1, 5, 10, 20, 40, 60, 80]
COMPARISONS = [
    ("cutmix", "smmix", "SMMix − CutMix: the paper's claim"),
    ("cutmix", "smmix_ink_oracle", "ink-oracle windows − CutMix: SMMix on the digits' own ink"),
    ("cutmix", "random_windows", "random windows − CutMix: SMMix's sizes and losses, no window choice"),
    ("random_windows", "smmix", "attention − random windows: what the attention adds"),
    ("smmix", "smmix_ink_oracle", "ink-oracle − attention windows: what the attention leaves"),
    ("cutmix", "smmix_warmup25", "warm-up SMMix − CutMix"),
    ("smmix", "smmix_warmup25", "warm-up − plain SMMix: what random windows, no L_con, in the first 25% recover"),
    ("cutmix", "smmix_warmup25_cutmix", "CutMix-warm-up SMMix − CutMix"),
    ("smmix", "smmix_warmup25_cutmix", "CutMix-warm-up − plain SMMix"),
    ("smmix_warmup25", "smmix_warmup25_cutmix", "CutMix warm-up − random-window warm-up"),
    ("cutmix", "smmix_warmup25_cutmix_random", "two-part-warm-up SMMix − CutMix"),
    ("smmix_warmup25", "smmix_warmup25_cutmix_random", "two-part warm-up − random-window warm-up"),
]


def pick(runs: Runs, variant: str, epochs: int) -> Runs:
    from trap_common import select

    return sorted(select(runs, variant, "none", epochs), key=lambda run: run["seed"])


def budget_arms(by_budget: dict[int, dict[str, Runs]]) -> list[tuple[int, str, Runs]]:
    """``(budget, arm, runs)`` for every arm with runs at a budget, budgets then arms in order."""
    return [(budget, variant, runs) for budget, by_arm in by_budget.items() for variant, runs in by_arm.items() if runs]


def header(runs: Runs) -> list[str]:
    seconds = {budget: [run["train_seconds"] for run in runs if run["epochs"] == budget] for budget in BUDGETS}
    timing = "; ".join(
        f"{budget} epochs: median {statistics.median(values):.0f} s ({min(values):.0f}-{max(values):.0f} s)"
        for budget, values in seconds.items()
        if values
    )
    codes = sorted({str(run.get("code", "?")) for run in runs})
    return [
        "# 32 px canvas digits, warm start, 80 to 200 epochs: convergence, CutMix vs SMMix, attention vs oracle "
        "windows",
        "",
        "Regime `canvas32`: 10-16 px digits at a random place on a 32 px canvas (noise 0.25), 1,437 training digits "
        "× 2 renderings, 360 held-out digits; ViT 4 layers, width 96, 4 heads, MLP 192, patch 4 (8 × 8 tokens), "
        "warm-started from the same ViT trained 15 epochs without mixing on the full-frame 32 px digits; AdamW lr "
        "1e-3, wd 0.05, cosine over the budget, 50 warm-up steps, batch 64, label smoothing 0.1, Mixup at p = 0.5 "
        "alternating with CutMix / SMMix, random resized crop 0.8-1; SMMix window sides ⌊δ·8⌋, δ ~ U(0.25, 0.75).",
        "",
        f"Runs: {len(runs)}, on this project's 2-core CPU machine, one thread a run, two or three at a time; "
        f"code commit(s): {', '.join(codes)}; training time per run: {timing}.",
        "",
        "Accuracies are held-out clean top-1 (360 canvases) in percent, mean ± std over seeds (sample std); "
        "`sN: x` is seed N. Intervals: 95% Welch t interval on a difference of two means, in points; `paired by "
        "seed`: 95% paired t interval on the mean per-seed difference (runs of one seed share the warm start and "
        "the data order; a CutMix-warm-up run is its seed's CutMix run, to the bit, for its first 25% of epochs).",
        "",
    ]


def convergence_section(by_budget: dict[int, dict[str, Runs]]) -> list[str]:
    from trap_common import last_fraction_change

    lines = [
        "## 1. Convergence",
        "",
        "Δlast20%: clean top-1 at the last epoch minus at 80% of the budget. The convergence criterion: |Δ| < 1 point. "
        "`last 5 − at 80%`: the mean of the last 5 epochs minus the mean of the 5 epochs ending at 80% of the "
        "budget, less exposed to the 0.28-point steps (one image) of a 360-image evaluation.",
        "",
        "| budget | arm | n | Δlast20% per seed | mean ± std | abs(Δ) < 1 point | last 5 − at 80%, mean ± std |",
        "|---|---|---|---|---|---|---|",
    ]
    for budget, variant, runs in budget_arms(by_budget):
        changes = [last_fraction_change(run) for run in runs]
        smooth = [
            window_mean(run, budget - 4, budget) - window_mean(run, budget * 4 // 5 - 4, budget * 4 // 5)
            for run in runs
        ]
        flat = sum(abs(change) < 0.01 for change in changes)
        cells = ", ".join(f"s{run['seed']}: {pct(c, True)}" for run, c in zip(runs, changes, strict=True))
        lines.append(
            f"| {budget} | {LABELS[variant]} | {len(runs)} | {cells} | {mean_std_signed(changes)} | "
            f"{flat} of {len(runs)} | {mean_std_signed(smooth)} |"
        )
    lines.append("")
    return lines


def window_mean(run: dict, first: int, last: int) -> float:
    """Mean held-out clean top-1 over epochs ``first`` to ``last`` of one run."""
    values = [float(entry["clean_top1"]) for entry in run["history"] if first <= int(entry["epoch"]) <= last]
    return statistics.mean(values)


def results_section(by_budget: dict[int, dict[str, Runs]]) -> list[str]:
    from trap_common import mean_std

    lines = [
        "## 2. Final clean top-1",
        "",
        "| budget | arm | n | top-1 | per seed |",
        "|---|---|---|---|---|",
    ]
    for budget, variant, runs in budget_arms(by_budget):
        lines.append(f"| {budget} | {LABELS[variant]} | {len(runs)} | {mean_std(finals(runs))} | {per_seed(runs)} |")
    lines += [
        "",
        "| budget | comparison | n | difference [95% CI] | interval excludes 0 | paired by seed [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for budget, by_arm in by_budget.items():
        for base, other, title in COMPARISONS:
            a, b = finals(by_arm.get(base, [])), finals(by_arm.get(other, []))
            result = welch(a, b)
            if result is None:
                continue
            _, low, high = result
            excludes = "–" if low == high else "yes" if low > 0 or high < 0 else "no"
            paired = paired_text(by_arm[base], by_arm[other])
            lines.append(f"| {budget} | {title} | {len(b)} vs {len(a)} | {welch_text(a, b)} | {excludes} | {paired} |")
    lines.append("")
    return lines


def fix_section(by_budget: dict[int, dict[str, Runs]]) -> list[str]:
    """The fix's test: every seed takes off no later than CutMix's latest seed, and the final spread (std and
    range over seeds) is no wider than CutMix's. Warm-started runs begin at 13-19%, so take-off is the first
    epoch at 30% and at 50% held-out clean top-1."""
    from trap_common import takeoff_epoch

    lines = [
        "## 2b. The motivation warm-up against the issue's test",
        "",
        "Take-off: the first epoch whose held-out clean top-1 reaches 30% / 50%, per seed, and the latest seed's. "
        "Passes: the arm's latest seed takes off no later than CutMix's latest at both levels, and its final std and "
        "range are no wider than CutMix's. `std / CutMix's`: the ratio of the final stds with its 95% interval (F "
        "distribution of a variance ratio): how well 5 seeds can tell two spreads apart.",
        "",
        "| budget | arm | n | epoch at 30% per seed (latest) | epoch at 50% per seed (latest) | final std | "
        "final range | std / CutMix's [95% CI] | passes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for budget, by_arm in by_budget.items():
        if not any(by_arm.get(variant) for variant in WARMUP_ARMS) or not by_arm.get("cutmix"):
            continue
        latest: dict[tuple[str, float], float] = {}
        for variant in ("cutmix", "smmix", *WARMUP_ARMS):
            runs = by_arm.get(variant)
            if not runs:
                continue
            cells = []
            for level in (0.3, 0.5):
                epochs = [takeoff_epoch(run["history"], level) for run in runs]
                latest[variant, level] = float("inf") if None in epochs else max(epochs)
                cells.append(f"{', '.join(str(e) for e in epochs)} ({latest[variant, level]:g})")
            values = finals(runs)
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            width = max(values) - min(values)
            if variant == "cutmix":
                cut_values, cut_spread, cut_width, verdict = values, spread, width, "–"
            else:
                on_time = all(latest[variant, level] <= latest["cutmix", level] for level in (0.3, 0.5))
                # accuracies are whole images out of 360, stored as float32: compare at 1e-6, so that a tie (a
                # range of 18 images on both sides) is a tie, not a float32 rounding either way
                narrow = spread <= cut_spread + 1e-6 and width <= cut_width + 1e-6
                verdict = "yes" if on_time and narrow else "no"
            ratio = "–" if variant == "cutmix" else variance_ratio_text(cut_values, values)
            lines.append(
                f"| {budget} | {LABELS[variant]} | {len(runs)} | {cells[0]} | {cells[1]} | {pct(spread)} | "
                f"{pct(width)} | {ratio} | {verdict} |"
            )
    lines.append("")
    return lines


def tables_section(runs: Runs, budget: int = 200) -> list[str]:
    """The paper's Tab. 7 rows and two design choices at convergence, each row against SMMix with all terms."""
    from trap_common import mean_std

    full_runs = pick(runs, "smmix", budget)
    full, cutmix = finals(full_runs), finals(pick(runs, "cutmix", budget))
    lines = [
        f"## 5. The paper's ablations at convergence ({budget} epochs, the paper's schedule: no warm-up)",
        "",
        "`− SMMix`: the row minus SMMix with all three terms (the official code's λ-mix of logits as L_con's target "
        "and the classifier as the region head); `− CutMix`: the row minus CutMix; 95% Welch intervals. The paper's "
        "column is its Tab. 7 (ImageNet, DeiT-S, 300 epochs). The SMMix row draws the window side ratio δ ~ U(0.25, "
        "0.75), as the paper. `− SMMix, paired`: the same difference over the seeds both rows ran, with its 95% "
        "paired t interval (a seed fixes the data order).",
        "",
        "| row | n | top-1 | per seed | − SMMix [95% CI] | − SMMix, paired [95% CI] | − CutMix [95% CI] "
        "| paper Tab. 7 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant in [*TAB7, *DESIGN_ROWS]:
        rows = pick(runs, variant, budget)
        if not rows:
            lines.append(f"| {LABELS[variant]} | 0 | not run | – | – | – | – | {PAPER_TAB7.get(variant, '–')} |")
            continue
        if variant == "smmix":
            differences = ["–", "–", welch_text(cutmix, finals(rows))]
        else:
            differences = [welch_text(full, finals(rows)), paired_text(full_runs, rows)]
            differences.append("–" if variant == "cutmix" else welch_text(cutmix, finals(rows)))
        lines.append(
            f"| {LABELS[variant]} | {len(rows)} | {mean_std(finals(rows))} | {per_seed(rows)} | "
            f"{' | '.join(differences)} | {PAPER_TAB7.get(variant, '–')} |"
        )
    lines.append("")
    return lines


def hit_section(by_arm: dict[str, Runs], oracle_rates: dict[str, float]) -> list[str]:
    from trap_common import epoch_curve

    arms = [variant for variant in ARMS if by_arm.get(variant)]
    order = " / ".join(SHORT[variant] for variant in arms)
    curves = {
        (variant, key): epoch_curve(by_arm[variant], key)
        for variant in arms
        for key in ("src_hit", "tgt_avoid", "tgt_occlude", "src_hit_random", "tgt_avoid_random", "tgt_occlude_random")
    }

    def at(variant: str, key: str, epoch: int) -> str:
        epochs, means, _ = curves[variant, key]
        return f"{100 * means[epochs.index(epoch)]:.1f}" if epoch in epochs else "–"

    lines = [
        "## 3. The model's own attention windows on held-out canvases (80 epochs)",
        "",
        "Each model's motivated forward (eval mode, Eq. 6 scores) at each epoch end; window sides 2-5 tokens, "
        "equally weighted. `src hit`: the max window overlaps the digit; `tgt avoid`: the min window misses it; "
        "`tgt occlude`: share of the digit's tokens under the min window. Only the SMMix arm (and the warm-up "
        "arm after its first 20 epochs) trains with these windows; the others are measured the same way. "
        "Mean over seeds, percent; " + ", ".join(f"{SHORT[variant]} = {LABELS[variant]}" for variant in arms) + ".",
        "",
        f"| epoch | src hit: {order} / random | tgt avoid: {order} / random | tgt occlude: {order} / random |",
        "|---|---|---|---|",
    ]
    for epoch in HIT_EPOCHS:
        cells = []
        for key in ("src_hit", "tgt_avoid", "tgt_occlude"):
            values = [at(variant, key, epoch) for variant in arms] + [at(arms[0], f"{key}_random", epoch)]
            cells.append(" / ".join(values))
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The oracle's own windows on the same canvases (ink scores, no model): "
        f"src hit {100 * oracle_rates['src_hit']:.1f}, tgt avoid {100 * oracle_rates['tgt_avoid']:.1f} "
        f"(random {100 * oracle_rates['tgt_avoid_random']:.1f}), tgt occlude {100 * oracle_rates['tgt_occlude']:.1f} "
        f"(random {100 * oracle_rates['tgt_occlude_random']:.1f}).",
        "",
    ]
    return lines


def content_section(by_arm: dict[str, Runs], oracle_rates: dict[str, float]) -> list[str]:
    """What the mixed label says against what the mixed image shows, for each way of placing the windows."""
    from trap_common import CANVAS32

    label_share = statistics.mean(side**2 for side in CANVAS32.sides) / CANVAS32.grid**2

    def last(variant: str, key: str) -> float | None:
        runs = by_arm.get(variant)
        return statistics.mean(float(run["history"][-1][key]) for run in runs) if runs else None

    sources = [("random windows (expectation)", oracle_rates["src_cover_random"], oracle_rates["tgt_occlude_random"])]
    sources.append(
        ("attention of the SMMix-trained models, epoch 80", last("smmix", "src_cover"), last("smmix", "tgt_occlude"))
    )
    sources.append(("ink oracle", oracle_rates["src_cover"], oracle_rates["tgt_occlude"]))
    lines = [
        "## 4. What the mixed label says and what the mixed image shows",
        "",
        f"SMMix's mixed label gives the source λ = window area / image area: {100 * label_share:.1f}% on average over "
        "the window sides 2-5 of the 8 × 8 grid, wherever the windows are placed. The image shows `src cover` of the "
        "source digit (its tokens inside the pasted window) and `1 − tgt occlude` of the target digit. `source share "
        "of the digits shown` = src cover / (src cover + 1 − tgt occlude), from the mean shares over held-out "
        "canvases. The shares count every token a digit's box touches, and windows must fit inside the grid, so "
        "even random windows show more of the source than λ says; read each row against the random row: the "
        "difference is how far the window placement moves the image away from its label.",
        "",
        "| windows placed by | src cover | target shown | source share of the digits shown | label λ |",
        "|---|---|---|---|---|",
    ]
    for name, cover, occlude in sources:
        if cover is None or occlude is None:
            continue
        share = cover / (cover + 1 - occlude)
        lines.append(f"| {name} | {pct(cover)} | {pct(1 - occlude)} | {pct(share)} | {pct(label_share)} |")
    lines.append("")
    return lines


def oracle_hit_rates() -> dict[str, float]:
    """:func:`trap_common.window_hit_rates` with the ink oracle's scores in place of a model's attention."""
    from ink_oracle import ink_scores
    from trap_common import CANVAS32, load_splits, score_hit_rates

    _, _, held_out = load_splits(regime=CANVAS32)
    scores = ink_scores(held_out["pixel_values"], (CANVAS32.grid, CANVAS32.grid))
    return score_hit_rates(scores, held_out["boxes"], CANVAS32)


def plot(by_budget: dict[int, dict[str, Runs]], path: Path) -> None:
    """Clean top-1 over epochs for every budget (160 epochs dashed, 200 dotted), then the own-window hit rates at 80."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trap_common import epoch_curve

    panels = [
        ("clean_top1", "held-out clean top-1 (%)"),
        ("src_hit", "own max window overlaps digit (%)"),
        ("tgt_avoid", "own min window misses digit (%)"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.9))
    for axis, (key, title) in zip(axes, panels, strict=True):
        budgets = BUDGETS if key == "clean_top1" else BUDGETS[:1]
        for budget in budgets:
            for variant in ARMS:
                runs = by_budget[budget].get(variant)
                if not runs:
                    continue
                xs, mean, std = epoch_curve(runs, key)
                name = f"{LABELS[variant]}, {budget} ep (n={len(runs)})"
                style = STYLES[budget]
                axis.plot(xs, [100 * m for m in mean], style, color=COLOURS[variant], lw=1.5, label=name)
                low = [100 * (m - s) for m, s in zip(mean, std, strict=True)]
                high = [100 * (m + s) for m, s in zip(mean, std, strict=True)]
                axis.fill_between(xs, low, high, color=COLOURS[variant], alpha=0.1)
        cutmix = by_budget[BUDGETS[0]].get("cutmix")
        if key != "clean_top1" and cutmix:
            xs, rand, _ = epoch_curve(cutmix, f"{key}_random")
            axis.plot(xs, [100 * v for v in rand], color="black", ls=":", lw=1.0, label="random window")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    from trap_common import RESULTS, load_runs

    runs = load_runs(EXPERIMENT)
    by_budget = {budget: {variant: pick(runs, variant, budget) for variant in ARMS} for budget in BUDGETS}
    lines = header(runs)
    lines += convergence_section(by_budget)
    lines += results_section(by_budget)
    lines += fix_section(by_budget)
    oracle_rates = oracle_hit_rates()
    lines += hit_section(by_budget[BUDGETS[0]], oracle_rates)
    lines += content_section(by_budget[BUDGETS[0]], oracle_rates)
    lines += tables_section(runs)
    out = RESULTS / "converge32_report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("\n".join(lines))
    plot(by_budget, out / "curves.png")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
