"""canvas32 from scratch, 20 epochs: where the model's own windows fall while it learns, and the warm-up fix.

Arms: CutMix, SMMix (all three terms from the first step) and SMMix with a warm-up, 5 seeds each. The warm-up
specs are those of :mod:`experiments.arms`: ``rand+nocon:5`` and ``rand+nocon:10`` are the package's random-window
warm-up for 5 and 10 epochs; ``nocon:5`` (no L_con for 5 epochs, max-min windows throughout) has no package
setting and is reported from its stored runs only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.runner import RunSpec
from experiments.stats import (
    CHANCE_LOSS,
    Runs,
    at_epoch,
    finals,
    loss_takeoff_epoch,
    mean_std,
    pct,
    select,
    spread,
    takeoff_epoch,
)
from experiments.store import runs as kind_runs
from experiments.tables import figure, label, table

NAME = "scratch32"
TITLE = "canvas32 from scratch: does self-motivation find the objects, and the warm-up fix"
EPOCHS = 20
SEEDS = range(5)
ARMS = [("cutmix", "none"), ("smmix", "none"), ("smmix", "rand+nocon:5"), ("smmix", "rand+nocon:10")]
REPORTED = [*ARMS, ("smmix", "nocon:5")]
SHOWN = [1, 2, 3, 4, 5, 7, 10, 12, 15, 20]


def plan(options: Any) -> list[RunSpec]:
    seeds = options.seeds if options.seeds is not None else SEEDS
    budgets = options.epochs or [EPOCHS]
    return [
        RunSpec("canvas32", variant, seed, epochs, warmup=warmup)
        for epochs in budgets
        for seed in seeds
        for variant, warmup in ARMS
    ]


def mechanism(cut: Runs, smm: Runs, epochs: int) -> list[str]:
    rows = []
    for epoch in [e for e in SHOWN if e < epochs] + [epochs]:
        row: list[object] = [epoch]
        for key, rand in (("src_cover", "src_cover"), ("tgt_avoid", "tgt_avoid"), ("tgt_occlude", "src_cover")):
            values = [at_epoch(cut, key, epoch), at_epoch(smm, key, epoch), at_epoch(cut, f"{rand}_random", epoch)]
            row.append(" / ".join(f"{100 * value:.0f}" for value in values))
        row.append(f"{pct(at_epoch(cut, 'clean_top1', epoch))} / {pct(at_epoch(smm, 'clean_top1', epoch))}")
        rows.append(row)
    header = ["epoch", "src cover: CutMix / SMMix / random", "tgt avoid: CutMix / SMMix / random"]
    header += ["tgt occlude: CutMix / SMMix / random", "clean top-1: CutMix / SMMix"]
    return [*table(header, rows), ""]


def takeoffs(runs: Runs, measure: Any) -> str:
    epochs = [measure(run) for run in runs]
    late = "never" if None in epochs else f"{sum(epochs) / len(epochs):.1f} / {max(epochs)}"
    return f"{', '.join(str(epoch) for epoch in epochs)} | {late}"


def fix_table(runs: Runs, epochs: int) -> list[str]:
    header = ["arm", "n", "take-off epoch per seed", "mean / latest", "L_cls take-off per seed", "mean / latest"]
    header += ["L_cls at epoch 5", "final top-1", "range", "per seed"]
    rows = []
    for variant, warmup in REPORTED:
        chosen = select(runs, variant, epochs, warmup)
        if not chosen:
            continue
        values = finals(chosen)
        at5 = [run["history"]["loss_cls"][4] for run in chosen if run["epochs"] >= 5]
        rows.append(
            [
                label(variant, warmup),
                len(chosen),
                takeoffs(chosen, takeoff_epoch),
                takeoffs(chosen, loss_takeoff_epoch),
                mean_std(at5, 1.0, 3),
                mean_std(values),
                pct(spread(values)[1]),
                ", ".join(pct(v) for v in values),
            ]
        )
    return [*table(header, rows), ""]


def latest(runs: Runs, measure: Any) -> float:
    epochs = [measure(run) for run in runs]
    return float("inf") if None in epochs else max(epochs)


def verdict(arm: Runs, cut: Runs) -> str:
    """The trap test: every seed takes off (by clean top-1 and by L_cls) no later than CutMix's latest seed, and
    the final spread (std and range) is no wider than CutMix's."""
    on_time = all(latest(arm, m) <= latest(cut, m) for m in (takeoff_epoch, loss_takeoff_epoch))
    (std, width), (cut_std, cut_width) = spread(finals(arm)), spread(finals(cut))
    passed = on_time and std <= cut_std + 1e-6 and width <= cut_width + 1e-6
    return (
        f"latest take-off {latest(arm, takeoff_epoch):g} / {latest(arm, loss_takeoff_epoch):g}, spread "
        f"{pct(std)} / {pct(width)}: {'passes' if passed else 'fails'}"
    )


def report(records: list[dict]) -> list[str]:
    runs = kind_runs(records)
    budget = max((run["epochs"] for run in runs if run["variant"] == "cutmix"), default=EPOCHS)
    cut, smm = select(runs, "cutmix", budget), select(runs, "smmix", budget)
    if not cut or not smm:
        return [f"## {TITLE}", "", "No runs stored.", ""]
    lines = [
        "## canvas32 from scratch: does self-motivation find the objects?",
        "",
        "```bash",
        "python -m experiments run scratch32",
        "```",
        "",
        f"CutMix and SMMix from scratch, {budget} epochs, {len(cut)} seeds each. At every epoch end the model's "
        "motivated forward (eval mode, the Eq. 6 score) runs on the 360 held-out canvases, and each window side 2-5 "
        "(equally likely) is placed as SMMix places it. `src cover`: share of the digit's tokens inside the "
        "max-score window (the one SMMix cuts from a source). `tgt avoid`: the min-score window (the one SMMix "
        "pastes over in a target) touches no digit token. `tgt occlude`: share of the digit's tokens under that "
        "window. `random`: the exact expectation for a uniformly placed window. CutMix-trained models are measured "
        "the same way; their training never uses the windows. Mean over seeds, percent.",
        "",
    ]
    lines += mechanism(cut, smm, budget)
    lines += figure("scratch32_hit_rates.png", "window hit rates over training, canvas32 from scratch")
    rand_avoid, rand_cover = smm[0]["random"]["tgt_avoid"], smm[0]["random"]["src_cover"]
    smm_avoid = [at_epoch(smm, "tgt_avoid", e) for e in range(1, budget + 1)]
    cut_passes = next((e for e in range(1, budget + 1) if at_epoch(cut, "tgt_avoid", e) > rand_avoid), None)
    lines += [
        f"- **Early on the windows are worse than random.** After epoch 1 the SMMix-trained models' min window misses "
        f"the digit in {pct(smm_avoid[0])}% of images (random {pct(rand_avoid)}%) and covers "
        f"{pct(at_epoch(smm, 'tgt_occlude', 1))}% of it (random {pct(rand_cover)}%): early max-min mixing pastes over "
        "the target's digit while the label still says λ source + (1 − λ) target.",
        f"- **The source side recovers within a few epochs, the target side does not under SMMix training.** The max "
        f"window holds about half the digit from epoch 3-5 on; the min window of SMMix-trained models is no better "
        f"than a random one at {sum(value <= rand_avoid for value in smm_avoid)} of {budget} epochs, while "
        f"CutMix-trained models pass random at epoch {cut_passes}.",
        f"- **Clean top-1 follows:** at epoch {budget} SMMix {mean_std(finals(smm))} against CutMix "
        f"{mean_std(finals(cut))}, within the seed spread.",
        "",
        "### The fix: random windows and no L_con for the first quarter of training",
        "",
        "The same runs, and SMMix with the package's motivation warm-up (`motivation_warmup_mixing: random_windows`: "
        "random window positions with L_cls and L_fine, no L_con) for the first 5 or 10 epochs (`rand+nocon:5`, "
        "`rand+nocon:10`), and with only L_con off for 5 epochs (`nocon:5`, max-min windows throughout). Take-off: "
        "the first epoch whose held-out clean top-1 reaches 20% (chance 10%); L_cls take-off: the first epoch "
        f"whose mean training L_cls is 0.03 below chance (ln 10 = {CHANCE_LOSS:.3f}).",
        "",
    ]
    lines += fix_table(runs, budget)
    lines += figure("scratch32_fix.png", "training L_cls and held-out clean top-1 per seed")
    cut_std, cut_width = spread(finals(cut))
    lines += [
        f"The test: every seed takes off no later than CutMix's latest seed (epoch {latest(cut, takeoff_epoch):g} by "
        f"clean top-1, {latest(cut, loss_takeoff_epoch):g} by L_cls), and the final spread is no wider than "
        f"CutMix's (std {pct(cut_std)}, range {pct(cut_width)}).",
        "",
    ]
    for variant, warmup in REPORTED[1:]:
        arm = select(runs, variant, budget, warmup)
        if arm:
            lines.append(f"- {label(variant, warmup)}: {verdict(arm, cut)}.")
    lines += [
        "",
        "So the rule is: for the first 25% of the epochs, SMMix batches use random windows and no L_con; then the "
        "configured SMMix. Half the training, or L_con off alone, does not pass. At 5 seeds and a seed std of 4-7 "
        "points no difference in final top-1 between these arms is significant; the pass / fail is the test "
        "applied to 5 seeds. The runs of the `rand+nocon:10` and `nocon:5` arms used a later version of the trainer "
        "(the same distributions, other random streams).",
        "",
    ]
    return lines


def figures(records: list[dict], directory: Path) -> None:
    from experiments import figures as plots

    runs = kind_runs(records)
    arms = {label(v, w): select(runs, v, EPOCHS, w) for v, w in REPORTED}
    pair = {name: arms[name] for name in ("CutMix", "SMMix")}
    plots.curves(pair, ["src_hit", "tgt_avoid", "clean_top1", "loss_cls"], directory / "scratch32_hit_rates.png")
    plots.per_seed_curves(arms, directory / "scratch32_fix.png")
