"""The mixing mechanism in isolation (paper Fig. 5a): a fixed evaluator scores held-out pairs mixed three ways.

The evaluator is the warm start fine-tuned 8 epochs on the canvas32 digits without mixing (``kind: evaluator``).
Each repeat (``kind: repeat``) shuffles the 360 held-out canvases into pairs (sample i with B − 1 − i in batches
of 60) and draws one window side per batch (⌊8δ⌋, δ ~ U(0.25, 0.75)); the three ways share pairs and sides:

* ``smmix``: windows placed by the evaluator's own attention (source: max window, target: min);
* ``cutmix_same_sides``: one window of the same side at the same random place in both images;
* ``random_windows``: independent random places in source and target.

Pairs with the same label are left out. Top-1 hit: the prediction is one of the two labels; top-2 hit: the two
highest classes are exactly the two labels.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import torch

from experiments import store
from experiments.regime import REGIMES, HeldOut
from experiments.tables import figure, table

NAME = "evaluator32"
TITLE = "The mechanism in isolation: a fixed evaluator (paper Fig. 5a)"
WAYS = ("smmix", "cutmix_same_sides", "random_windows")
BATCH = 60
REPEATS = 30
EPOCHS = 8


@torch.no_grad()
def score_ways(model: torch.nn.Module, held_out: HeldOut, repeat: int) -> dict[str, dict[str, int]]:
    """Hits of the three mixing ways on one shuffle of the held-out pairs."""
    import numpy as np

    from smmix_hf.analyze.mixed_accuracy import score_mixed_batch
    from smmix_hf.backbones.probe import SMMixProbe
    from smmix_hf.mixing import flip_pairing, paste_windows, random_window_corners, smmix_images

    grid = REGIMES["canvas32"].grid
    generator = torch.Generator().manual_seed(repeat)
    order = torch.randperm(held_out["labels"].shape[0], generator=generator)
    sides = np.random.default_rng(repeat)
    counts = {way: {"top1": 0, "top2": 0, "pairs": 0} for way in WAYS}
    model.eval()
    probe = SMMixProbe(model)
    try:
        for start in range(0, order.shape[0] - BATCH + 1, BATCH):
            index = order[start : start + BATCH]
            images, labels = held_out["pixel_values"][index], held_out["labels"][index]
            _, scores = probe.motivated_forward(images)
            region = (max(1, math.floor(sides.uniform(0.25, 0.75) * grid)),) * 2
            source_index = flip_pairing(BATCH)
            same = random_window_corners(BATCH, (grid, grid), region, generator)
            corners = [random_window_corners(BATCH, (grid, grid), region, generator) for _ in range(2)]
            mixes = {
                "smmix": smmix_images(images, scores, region, source_index),
                "cutmix_same_sides": paste_windows(images, (grid, grid), region, source_index, same, same),
                "random_windows": paste_windows(images, (grid, grid), region, source_index, *corners),
            }
            for way, mixed in mixes.items():
                top1, top2, valid = score_mixed_batch(model(pixel_values=mixed.images).logits, labels, source_index)
                counts[way]["top1"] += int((top1 & valid).sum())
                counts[way]["top2"] += int((top2 & valid).sum())
                counts[way]["pairs"] += int(valid.sum())
    finally:
        probe.remove()
    return counts


def run(options: Any) -> None:
    from experiments.regime import load_splits, quiet
    from experiments.runner import RunSpec, train_run

    quiet()
    limits = options.limits
    data = load_splits(REGIMES["canvas32"], limits.max_train, limits.max_eval)
    seed = (options.seeds or [0])[0]
    spec = RunSpec("canvas32", "none", seed, (options.epochs or [EPOCHS])[0], learning_rate=1e-3, warm_start=True)
    record, model = train_run(spec, *data, limits, kind="evaluator")
    store.append(NAME, record, options.results)
    for repeat in range(REPEATS):
        store.append(NAME, {"kind": "repeat", "repeat": repeat, **score_ways(model, data[2], repeat)}, options.results)


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width over repeats (normal approximation)."""
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return statistics.mean(values), half


def rates(records: list[dict]) -> dict[str, dict[str, list[float]]]:
    repeats = store.runs(records, "repeat")
    return {
        way: {metric: [rep[way][metric] / rep[way]["pairs"] for rep in repeats] for metric in ("top1", "top2")}
        for way in WAYS
    }


def report(records: list[dict]) -> list[str]:
    evaluators, repeats = store.runs(records, "evaluator"), store.runs(records, "repeat")
    if not evaluators or not repeats:
        return [f"## {TITLE}", "", "No runs stored.", ""]
    evaluator, table_rates = evaluators[-1], rates(records)
    pairs = statistics.mean(rep["smmix"]["pairs"] for rep in repeats)
    rows = []
    for way in WAYS:
        cells = [interval(table_rates[way][metric]) for metric in ("top1", "top2")]
        rows.append([way, *[f"{100 * mean:.1f} ± {100 * half:.1f}" for mean, half in cells]])
    differences = []
    for other in WAYS[1:]:
        cells = []
        for metric in ("top1", "top2"):
            diffs = [a - b for a, b in zip(table_rates["smmix"][metric], table_rates[other][metric], strict=True)]
            mean, half = interval(diffs)
            cells.append(f"{100 * mean:+.1f} ± {100 * half:.1f}")
        differences.append([f"smmix − {other}", *cells])
    smm, cut = (statistics.mean(table_rates[way]["top2"]) for way in ("smmix", "cutmix_same_sides"))
    return [
        f"## {TITLE}",
        "",
        "```bash",
        "python -m experiments run evaluator32",
        "```",
        "",
        f"A fixed evaluator, trained without any mixing (the warm start fine-tuned {evaluator['epochs']} epochs on the "
        f"canvas32 digits; clean held-out top-1 {100 * evaluator['clean_top1']:.1f}%), scores held-out pairs mixed "
        "three ways: SMMix windows placed by its own attention (source: max window, target: min), one window of the "
        "same side at the same random place in both images (CutMix's geometry), and random windows at independent "
        f"places. Each of {len(repeats)} repeats shuffles the 360 canvases into pairs and draws one window side per "
        f"batch of {BATCH}; the three ways share pairs and sides ({pairs:.0f} pairs with two different labels per "
        "repeat on average). Top-1 hit: the prediction is one of the two labels; top-2 hit: the two highest classes "
        "are exactly the two labels. Mean over repeats with its 95% interval, percent:",
        "",
        *table(["mixed by", "top-1 hit", "top-2 hit"], rows),
        "",
        "Paired differences (the same pairs and window sides in every repeat):",
        "",
        *table(["difference", "top-1 hit", "top-2 hit"], differences),
        "",
        *figure("evaluator32.png", "mixed-image hit rates of a fixed evaluator"),
        f"Holds in direction: windows placed by the evaluator's own attention give mixes whose two labels it ranks "
        f"first more often than CutMix-geometry or random windows of the same sizes ({smm / cut:.1f}× the top-2 "
        "rate of CutMix geometry). Not in size: the paper's ratio is about 2× (48.3% vs 23.8%, DeiT-S on ImageNet); "
        "here every top-2 rate is low because the evaluator itself is weak.",
        "",
    ]


def figures(records: list[dict], directory: Path) -> None:
    from experiments import figures as plots

    table_rates = rates(records)
    names = {"smmix": "SMMix\n(own attention)", "cutmix_same_sides": "CutMix geometry", "random_windows": "random"}
    panels = {
        f"{metric} hit rate": {names[way]: interval(table_rates[way][metric]) for way in WAYS}
        for metric in ("top1", "top2")
    }
    plots.bars(panels, directory / "evaluator32.png")
