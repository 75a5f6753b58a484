#!/usr/bin/env python
"""the mixing mechanism in isolation (paper Fig. 5a, AutoMix's protocol).

A fixed evaluator, trained without any mixing (the full-frame-digits warm start of ``trap_common.py``
fine-tuned on the 32 px canvas digits with ``mix_method=none``), scores held-out pairs mixed three ways:

* ``smmix``: SMMix windows placed by the evaluator's own attention (source: max window, target: min);
* ``cutmix_same_sides``: one window of the same side, at the same random position in both images
  (CutMix's geometry, token-aligned);
* ``random_windows``: SMMix with random windows (independent random positions in source and target).

Every repeat shuffles the 360 held-out canvases into pairs (sample i with B-1-i in batches of 60) and
draws one window side per batch (δ ~ U(0.25, 0.75) on the 8 × 8 grid); the three ways share pairs and
sides. Pairs with the same label are left out. Top-1 hit: the prediction is one of the two labels; top-2
hit: the two highest classes are exactly the two labels. 95% intervals are over repeats (mean ± 1.96 ·
sd / √R), and for the paired difference SMMix − CutMix.

    python experiments/fixed_evaluator.py --repeats 30 --epochs 8

Writes ``experiments/results/fixed_evaluator/``: ``evaluator.json`` (its training run),
``mixed_accuracy.json``, ``summary.md`` and ``mixed_accuracy.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

EXPERIMENT = "fixed_evaluator"
WAYS = ("smmix", "cutmix_same_sides", "random_windows")
BATCH = 60


@torch.no_grad()
def score_ways(model: torch.nn.Module, held_out: dict[str, torch.Tensor], repeat: int) -> dict[str, dict[str, int]]:
    """Hits of the three mixing ways on one shuffle of the held-out pairs."""
    import numpy as np
    from trap_common import CANVAS32

    CANVAS, GRID = CANVAS32.canvas, CANVAS32.grid

    from smmix_hf.analyze.mixed_accuracy import score_mixed_batch
    from smmix_hf.backbones.probe import SMMixProbe
    from smmix_hf.mixing import flip_pairing, paste_windows, random_window_corners, smmix_images

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
            with probe.reading_attention((CANVAS, CANVAS)):
                model(pixel_values=images)
            scores = probe.scores
            side = max(1, math.floor(sides.uniform(0.25, 0.75) * GRID))  # δ ~ U(0.25, 0.75), side ⌊δ·g⌋
            region = (side, side)
            source_index = flip_pairing(BATCH)
            same = random_window_corners(BATCH, (GRID, GRID), region, generator)
            mixes = {
                "smmix": smmix_images(images, scores, region, source_index),
                "cutmix_same_sides": paste_windows(images, (GRID, GRID), region, source_index, same, same),
                "random_windows": paste_windows(
                    images, (GRID, GRID), region, source_index,
                    random_window_corners(BATCH, (GRID, GRID), region, generator),
                    random_window_corners(BATCH, (GRID, GRID), region, generator),
                ),
            }  # fmt: skip
            for way, mixed in mixes.items():
                logits = model(pixel_values=mixed.images).logits
                top1, top2, valid = score_mixed_batch(logits, labels, source_index)
                counts[way]["top1"] += int((top1 & valid).sum())
                counts[way]["top2"] += int((top2 & valid).sum())
                counts[way]["pairs"] += int(valid.sum())
    finally:
        probe.remove()
    return counts


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width over repeats (normal approximation)."""
    mean = statistics.mean(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, half


def summary(evaluator: dict, repeats: list[dict[str, dict[str, int]]]) -> tuple[str, dict]:
    rates = {
        way: {metric: [rep[way][metric] / rep[way]["pairs"] for rep in repeats] for metric in ("top1", "top2")}
        for way in WAYS
    }
    table = {}
    lines = [
        "# Section 2: a fixed evaluator on held-out pairs mixed three ways",
        "",
        f"Evaluator: the canvas ViT warm-started from full-frame digits, fine-tuned {evaluator['epochs']} epochs on "
        f"the canvas digits without mixing; clean held-out top-1 {100 * evaluator['clean_top1']:.1f}%. "
        f"{len(repeats)} repeats × {repeats[0]['smmix']['pairs']}-ish pairs with different labels (out of 360); "
        "mean over repeats with 95% interval, percent.",
        "",
        "| mixed by | top-1 hit | top-2 hit |",
        "|---|---|---|",
    ]
    for way in WAYS:
        cells = []
        for metric in ("top1", "top2"):
            mean, half = interval(rates[way][metric])
            table[f"{way}_{metric}"] = {"mean": mean, "ci95": half}
            cells.append(f"{100 * mean:.1f} ± {100 * half:.1f}")
        lines.append(f"| {way} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences (same pairs and window sides in every repeat):", ""]
    lines += ["| difference | top-1 hit | top-2 hit |", "|---|---|---|"]
    for other in ("cutmix_same_sides", "random_windows"):
        cells = []
        for metric in ("top1", "top2"):
            diffs = [a - b for a, b in zip(rates["smmix"][metric], rates[other][metric], strict=True)]
            mean, half = interval(diffs)
            table[f"smmix_minus_{other}_{metric}"] = {"mean": mean, "ci95": half}
            cells.append(f"{100 * mean:+.1f} ± {100 * half:.1f}")
        lines.append(f"| smmix − {other} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines), table


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for axis, metric in zip(axes, ("top1", "top2"), strict=True):
        means = [100 * table[f"{way}_{metric}"]["mean"] for way in WAYS]
        halves = [100 * table[f"{way}_{metric}"]["ci95"] for way in WAYS]
        axis.bar(range(len(WAYS)), means, yerr=halves, capsize=4, color=["tab:red", "tab:blue", "tab:grey"])
        axis.set_xticks(
            range(len(WAYS)), ["SMMix\n(own attention)", "CutMix geometry\n(same sides)", "random\nwindows"]
        )
        axis.set_ylabel(f"{metric} hit rate (%)")
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=8, help="Fine-tuning epochs of the evaluator.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="Evaluator seed (the first one is used).")
    args = parser.parse_args(argv)
    from transformers import ViTForImageClassification
    from trap_common import PRETRAINED, RESULTS, load_splits, pretrain, save_result, setup_threads, train_run

    setup_threads()
    if not (PRETRAINED / "config.json").exists():
        pretrain(PRETRAINED)
    out = RESULTS / EXPERIMENT
    out.mkdir(parents=True, exist_ok=True)
    evaluator_dir = PRETRAINED.parent / f"canvas_evaluator_e{args.epochs}_s{args.seeds[0]}"
    splits, processor, held_out = load_splits()
    if (evaluator_dir / "config.json").exists():
        model = ViTForImageClassification.from_pretrained(evaluator_dir)
        evaluator = json.loads((out / "evaluator.json").read_text())
    else:
        result = train_run(
            "none", args.seeds[0], args.epochs, splits, processor, held_out, learning_rate=1e-3, init=str(PRETRAINED)
        )
        model = result["model"]
        model.save_pretrained(evaluator_dir)
        save_result(result, out / "evaluator.json")
        evaluator = json.loads((out / "evaluator.json").read_text())
    repeats = [score_ways(model, held_out, repeat) for repeat in range(args.repeats)]
    text, table = summary(evaluator, repeats)
    (out / "mixed_accuracy.json").write_text(json.dumps({"repeats": repeats, "table": table}, indent=1))
    (out / "summary.md").write_text(text)
    plot(table, out / "mixed_accuracy.png")
    print(text)


if __name__ == "__main__":
    main()
