#!/usr/bin/env python
"""does self-motivation find the objects early in training?

Trains CutMix and SMMix (all three terms) from scratch on the 32 px canvas digits (``trap_common.py``)
and, at every epoch end, runs the model's motivated forward on the 360 held-out canvases, whose digit
boxes are known. Per epoch it records how often the max-attention window (SMMix's source window)
overlaps the digit and how often the min-attention window (SMMix's target window) misses it, against
the exact rates of uniformly placed windows, beside clean top-1 and the epoch's training L_cls. The
CutMix run's windows are measured the same way (its attention is never used in its training).

    python experiments/trap_mechanism.py --seeds 0 1 2 --epochs 20

Writes ``experiments/results/trap_mechanism/``: one JSON per run (as it finishes),
``summary.md`` and ``hit_rates.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

EXPERIMENT = "trap_mechanism"
ARMS = [("cutmix", "none"), ("smmix", "none")]


def summary(runs: list[dict], epochs: int) -> str:
    from trap_common import arm_label, epoch_curve, select

    lines = [
        "# Section 3: window hit rates over training (held-out canvases, 360 images)",
        "",
        "Per epoch, mean ± std over seeds, percent. `src hit`: the max-attention window overlaps the digit; "
        "`tgt avoid`: the min-attention window misses the digit; `rand`: the same for uniformly placed windows "
        "(exact expectation). Window sides 2-5 tokens of the 8 × 8 grid, equally weighted. L_cls: the epoch's mean "
        "training mixed-label CE (chance ln 10 = 2.303).",
        "",
    ]
    lines += compact_table(runs, epochs)
    for variant, warmup in ARMS:
        chosen = select(runs, variant, warmup, epochs)
        if not chosen:
            continue
        lines += [f"## {arm_label(variant, warmup)} (n = {len(chosen)} seeds, {epochs} epochs)", ""]
        lines.append(
            "| epoch | L_cls | clean top-1 | src hit | src hit rand | src cover | src cover rand | tgt avoid "
            "| tgt avoid rand | tgt occlude | tgt occlude rand |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        keys = ["loss_cls", "clean_top1", "src_hit", "src_hit_random", "src_cover", "src_cover_random"]
        keys += ["tgt_avoid", "tgt_avoid_random", "tgt_occlude", "tgt_occlude_random"]
        curves = {key: epoch_curve(chosen, key) for key in keys}
        for index, epoch in enumerate(curves["clean_top1"][0]):
            cells = []
            for key in keys:
                _, mean, std = curves[key]
                scale, digits = (1.0, 3) if key == "loss_cls" else (100.0, 1)
                cells.append(f"{scale * mean[index]:.{digits}f} ± {scale * std[index]:.{digits}f}")
            lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def compact_table(runs: list[dict], epochs: int) -> list[str]:
    """CutMix and SMMix side by side at a few epochs: digit share under the windows, and clean top-1."""
    from trap_common import epoch_curve, select

    cut, smm = select(runs, "cutmix", "none", epochs), select(runs, "smmix", "none", epochs)
    if not cut or not smm:
        return []
    lines = [
        f"## Side by side (CutMix n = {len(cut)}, SMMix n = {len(smm)} seeds; mean over seeds, percent)",
        "",
        "| epoch | src cover: CutMix / SMMix / random | tgt avoid: CutMix / SMMix / random | "
        "tgt occlude: CutMix / SMMix / random | clean top-1: CutMix / SMMix |",
        "|---|---|---|---|---|",
    ]
    curves = {
        (name, key): epoch_curve(chosen, key)[1]
        for name, chosen in (("c", cut), ("s", smm))
        for key in ("src_cover", "src_cover_random", "tgt_avoid", "tgt_avoid_random", "tgt_occlude", "clean_top1")
    }
    shown = sorted({1, 2, 3, 4, 5, 7, 10, 12, 15, epochs} & set(range(1, epochs + 1)))
    for epoch in shown:
        i = epoch - 1
        cells = [
            f"{100 * curves['c', key][i]:.0f} / {100 * curves['s', key][i]:.0f} / {100 * curves['c', rand][i]:.0f}"
            for key, rand in (
                ("src_cover", "src_cover_random"),
                ("tgt_avoid", "tgt_avoid_random"),
                ("tgt_occlude", "src_cover_random"),
            )
        ]
        cells.append(f"{100 * curves['c', 'clean_top1'][i]:.1f} / {100 * curves['s', 'clean_top1'][i]:.1f}")
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def plot(runs: list[dict], epochs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trap_common import arm_label, epoch_curve, select

    panels = [
        ("src_hit", "source max window overlaps digit"),
        ("tgt_avoid", "target min window misses digit"),
        ("clean_top1", "clean top-1 (held out)"),
        ("loss_cls", "training L_cls"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    colours = {"cutmix": "tab:blue", "smmix": "tab:red"}
    for axis, (key, title) in zip(axes, panels, strict=True):
        for variant, warmup in ARMS:
            chosen = select(runs, variant, warmup, epochs)
            if not chosen:
                continue
            for run in chosen:
                xs = [entry["epoch"] for entry in run["history"]]
                axis.plot(xs, [entry.get(key) for entry in run["history"]], color=colours[variant], alpha=0.25, lw=0.8)
            xs, mean, _ = epoch_curve(chosen, key)
            axis.plot(xs, mean, color=colours[variant], lw=2, label=f"{arm_label(variant, warmup)} (n={len(chosen)})")
            if key in ("src_hit", "tgt_avoid"):
                xs, rand, _ = epoch_curve(chosen, f"{key}_random")
                axis.plot(
                    xs, rand, color="grey", ls="--", lw=1.2, label="random window" if variant == "cutmix" else None
                )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    from trap_common import RESULTS, run_arms

    runs = run_arms(EXPERIMENT, ARMS, args.seeds, [args.epochs])
    out = RESULTS / EXPERIMENT
    (out / "summary.md").write_text(summary(runs, args.epochs))
    plot(runs, args.epochs, out / "hit_rates.png")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
