"""Report sections shared by the studies with many arms and budgets (``canvas48``, ``converge32``).

Each function takes runs already grouped by the study and returns markdown lines: convergence, final top-1
against budgets with differences, the trap test (take-off and final spread against CutMix), window hit rates
over epochs, and rows against reference rows (the paper's ablations).
"""

from __future__ import annotations

import statistics

from experiments.stats import (
    Runs,
    at_epoch,
    excludes_zero,
    finals,
    last_fraction_change,
    mean_std,
    mean_std_signed,
    paired,
    paired_text,
    pct,
    per_seed,
    spread,
    takeoff_epoch,
    variance_ratio_text,
    welch,
    welch_text,
)
from experiments.tables import label, table

ByArm = dict[str, Runs]


def flat_count(runs: Runs, tolerance: float = 0.01) -> int:
    """Runs whose clean top-1 moved by less than ``tolerance`` over the last 20% of their epochs."""
    return sum(abs(last_fraction_change(run)) < tolerance for run in runs)


def convergence_table(groups: list[tuple[str, Runs]], smooth: bool = False) -> list[str]:
    """Δlast20% per seed, mean ± std and the seeds under 1 point; ``smooth`` adds 5-epoch means (last 5 − the 5
    ending at 80% of the budget), less exposed to the one-image steps of a 360-image evaluation."""
    header = ["arm", "n", "Δlast20% per seed", "mean ± std", "abs(Δ) < 1 point"]
    header += ["last 5 − the 5 ending at 80%"] if smooth else []
    rows = []
    for name, runs in groups:
        if not runs:
            continue
        changes = [last_fraction_change(run) for run in runs]
        row = [name, len(runs), per_seed(runs, changes, signed=True), mean_std_signed(changes)]
        row.append(f"{flat_count(runs)} of {len(runs)}")
        if smooth:
            budget = runs[0]["epochs"]
            end, early = budget, budget * 4 // 5
            row.append(mean_std_signed([window(run, end) - window(run, early) for run in runs]))
        rows.append(row)
    return [*table(header, rows), ""]


def window(run: dict, last: int) -> float:
    values = run["history"]["clean_top1"][last - 5 : last]
    return statistics.mean(float(value) for value in values)


def budget_table(by_budget: dict[int, ByArm], arms: list[str], differences: list[tuple[str, str, str]]) -> list[str]:
    """Final top-1 per arm and budget (n in brackets), then rows of differences ``b − a`` with Welch intervals."""
    budgets = list(by_budget)
    rows: list[list[object]] = []
    for variant in arms:
        cells = [
            f"{mean_std(finals(by_budget[b].get(variant, [])))} ({len(by_budget[b].get(variant, []))})" for b in budgets
        ]
        if any(by_budget[b].get(variant) for b in budgets):
            rows.append([label(variant), *[cell if not cell.startswith("–") else "–" for cell in cells]])
    for a, b, title in differences:
        rows.append(
            [title, *[welch_text(finals(by_budget[x].get(a, [])), finals(by_budget[x].get(b, []))) for x in budgets]]
        )
    return [*table(["arm", *[f"{budget} epochs" for budget in budgets]], rows), ""]


def takeoff_table(by_arm: ByArm, levels: tuple[float, ...], loss: bool = False) -> list[str]:
    """Take-off per seed at each clean top-1 ``level`` (and by L_cls), final top-1 and its spread, and whether the
    arm passes the trap test against CutMix: its latest seed takes off no later than CutMix's latest, and its final
    std and range are no wider than CutMix's (compared at 1e-6: accuracies are whole images out of 360)."""
    from experiments.stats import loss_takeoff_epoch

    cut = by_arm["cutmix"]
    cut_std, cut_range = spread(finals(cut))
    header = ["arm", "n", *[f"epoch at {pct(level)[:-2]}% per seed (latest)" for level in levels]]
    header += ["L_cls take-off per seed (latest)"] if loss else []
    header += ["final top-1", "std", "range", "std / CutMix's [95% CI]", "passes"]
    measures = [lambda run, level=level: takeoff_epoch(run, level) for level in levels]
    measures += [loss_takeoff_epoch] if loss else []
    latest_cut = [latest([measure(run) for run in cut]) for measure in measures]
    rows = []
    for variant, runs in by_arm.items():
        if not runs:
            continue
        cells, on_time = [], True
        for measure, cut_latest in zip(measures, latest_cut, strict=True):
            epochs = [measure(run) for run in runs]
            cells.append(f"{', '.join(str(epoch) for epoch in epochs)} ({latest(epochs):g})")
            on_time = on_time and latest(epochs) <= cut_latest
        values = finals(runs)
        std, width = spread(values)
        narrow = std <= cut_std + 1e-6 and width <= cut_range + 1e-6
        verdict = "–" if variant == "cutmix" else "yes" if on_time and narrow else "no"
        ratio = "–" if variant == "cutmix" else variance_ratio_text(finals(cut), values)
        rows.append([label(variant), len(runs), *cells, mean_std(values), pct(std), pct(width), ratio, verdict])
    return [*table(header, rows), ""]


def latest(epochs: list[int | None]) -> float:
    return float("inf") if None in epochs else float(max(epochs))  # type: ignore[type-var]


def passes(by_arm: ByArm, variant: str, levels: tuple[float, ...]) -> bool:
    """The trap test of :func:`takeoff_table` for one arm."""
    cut, runs = by_arm["cutmix"], by_arm[variant]
    on_time = all(
        latest([takeoff_epoch(run, level) for run in runs]) <= latest([takeoff_epoch(run, level) for run in cut])
        for level in levels
    )
    (std, width), (cut_std, cut_range) = spread(finals(runs)), spread(finals(cut))
    return on_time and std <= cut_std + 1e-6 and width <= cut_range + 1e-6


HIT_KEYS = ("src_hit", "tgt_avoid", "src_cover", "tgt_occlude")


def hit_table(by_arm: ByArm, short: dict[str, str], epochs: list[int], keys: tuple[str, ...] = HIT_KEYS) -> list[str]:
    """Mean window measures per arm at some epochs, each with the random expectation, and clean top-1."""
    arms = [variant for variant, runs in by_arm.items() if runs]
    order = " / ".join(short[variant] for variant in arms)
    header = ["epoch", *[f"{key.replace('_', ' ')}: {order} / random" for key in keys], f"clean top-1: {order}"]
    rows = []
    for epoch in epochs:
        row: list[object] = [epoch]
        for key in keys:
            values = [at_epoch(by_arm[variant], key, epoch) for variant in arms]
            values.append(at_epoch(by_arm[arms[0]], f"{key}_random", epoch))
            row.append(" / ".join("–" if value is None else pct(value) for value in values))
        values = [at_epoch(by_arm[variant], "clean_top1", epoch) for variant in arms]
        row.append(" / ".join("–" if value is None else pct(value) for value in values))
        rows.append(row)
    legend = ", ".join(f"{short[variant]} = {label(variant)} (n = {len(by_arm[variant])})" for variant in arms)
    return [*table(header, rows), "", f"{legend}.", ""]


def rows_against(
    rows: list[tuple[str, Runs]], references: list[tuple[str, Runs]], paper: dict[str, str] | None = None
) -> list[str]:
    """Rows with their final top-1 and the difference to each reference (Welch; the first also paired by seed)."""
    header = ["row", "n", "top-1", "per seed"]
    for index, (name, _) in enumerate(references):
        header += [f"− {name} [95% CI]"] + ([f"− {name}, paired by seed"] if index == 0 else [])
    header += ["paper Tab. 7"] if paper is not None else []
    lines = []
    for key, runs in rows:
        if not runs:
            continue
        row: list[object] = [label(key), len(runs), mean_std(finals(runs)), per_seed(runs)]
        for index, (_, reference) in enumerate(references):
            same = [run["seed"] for run in runs] == [run["seed"] for run in reference] and runs == reference
            row.append("–" if same else welch_text(finals(reference), finals(runs)))
            if index == 0:
                row.append("–" if same else paired_text(reference, runs, count=False))
        if paper is not None:
            row.append(paper.get(key, "–"))
        lines.append(row)
    return [*table(header, lines), ""]


def difference(a: Runs, b: Runs) -> str:
    """``b − a`` in points with its Welch interval, for prose."""
    return welch_text(finals(a), finals(b))


def paired_difference(a: Runs, b: Runs) -> str:
    return paired_text(a, b, count=False)


def resolved(a: Runs, b: Runs) -> bool:
    return excludes_zero(welch(finals(a), finals(b)))


def paired_resolved(a: Runs, b: Runs) -> bool:
    result = paired(a, b)
    return result is not None and excludes_zero(result[0])
