"""CutMix vs SMMix from scratch on the bundled digits and on a 40 px canvas: clean top-1 and Fig. 5a's metric.

Both methods train the ViT of ``configs/demo.yaml`` (4 layers, width 128, patch 8) with the same recipe, seeds and
epochs, alternating with Mixup at p = 0.5. ``digits``: the bundled digits at 32 px (a 4 × 4 token grid, the
digit fills the image; 15 epochs). ``canvas``: each digit at a random place and scale (40-75% of the side) on a
40 px noisy canvas (a 5 × 5 grid; 30 epochs). Per run: clean top-1 on the 360 held-out images, and the top-1 /
top-2 accuracy on held-out images mixed by CutMix and by SMMix (windows placed by the evaluated model's own
attention), each averaged over three pairings.

A record is a run (``kind: run``) or a row over seeds (``kind: aggregate``: mean and std of each measure).
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from experiments import store
from experiments.stats import pct
from experiments.tables import table

NAME = "cutmix_vs_smmix"
TITLE = "CutMix vs SMMix on the digits and on a canvas"
DATASETS = {"digits": (32, 15), "canvas": (40, 30)}  # image side, epochs
METHODS = ("cutmix", "smmix")
MEASURES = ["clean_top1", "cutmix_mixed_top1", "cutmix_mixed_top2", "smmix_mixed_top1", "smmix_mixed_top2"]


def train(name: str, method: str, seed: int, epochs: int, options: Any) -> dict[str, Any]:
    """One run; its record."""
    from transformers import ViTImageProcessor, set_seed

    from experiments.canvas import load_canvas_digits
    from experiments.regime import RECIPE, REGIMES, build_model
    from smmix_hf import SMMixConfig, SMMixTrainer
    from smmix_hf.analyze import mixed_accuracy
    from smmix_hf.data import (
        build_eval_transform,
        build_train_transform,
        collate_image_batch,
        load_digits_dataset,
        make_batch_transform,
        settings_from_image_processor,
    )

    size = DATASETS[name][0]
    splits = load_digits_dataset(image_size=32, seed=0) if name == "digits" else load_canvas_digits(canvas_size=size)
    for split, limit in (("train", options.limits.max_train), ("validation", options.limits.max_eval)):
        if limit is not None:
            splits[split] = splits[split].select(range(min(limit, len(splits[split]))))
    processor = ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    crop = (0.6 if name == "digits" else 0.8, 1.0)
    settings = settings_from_image_processor(
        processor, horizontal_flip=False, crop_pct=1.0, random_resized_crop_scale=crop
    )
    splits["train"].set_transform(make_batch_transform(build_train_transform(settings)))
    splits["validation"].set_transform(make_batch_transform(build_eval_transform(settings)))
    set_seed(seed)
    model = build_model(dataclasses.replace(REGIMES["canvas48"], canvas=size))  # the demo's ViT: width 128, patch 8
    args = SMMixConfig(
        output_dir=f"{options.limits.output_dir}/{name}-{method}-{seed}",
        mix_method=method,
        motivation_warmup_ratio=0.0,
        num_train_epochs=epochs,
        learning_rate=2e-3,
        seed=seed,
        use_cpu=options.limits.device == "cpu",
        **RECIPE,
    )
    trainer = SMMixTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=collate_image_batch,
        processing_class=processor,
    )
    trainer.train()
    record: dict[str, Any] = {"kind": "run", "dataset": name, "method": method, "seed": seed, "epochs": epochs}
    record["clean_top1"] = trainer.evaluate()["eval_top1"]
    for mixed_by in METHODS:
        scores = [mixed_accuracy(model, splits["validation"], mixed_by, seed=mix_seed) for mix_seed in range(3)]
        record[f"{mixed_by}_mixed_top1"] = statistics.mean(score.top1 for score in scores)
        record[f"{mixed_by}_mixed_top2"] = statistics.mean(score.top2 for score in scores)
    return record


def run(options: Any) -> None:
    from experiments.regime import quiet

    quiet()
    for name, (_, epochs) in DATASETS.items():
        for seed in options.seeds if options.seeds is not None else range(3):
            for method in METHODS:
                budget = (options.epochs or [epochs])[0]
                store.append(NAME, train(name, method, seed, budget, options), options.results)


def rows(records: list[dict]) -> list[dict[str, Any]]:
    """One row per dataset and method: stored aggregates as they are, runs reduced to mean and std over seeds."""
    result = list(store.runs(records, "aggregate"))
    runs = store.runs(records)
    for name in DATASETS:
        for method in METHODS:
            chosen = [run for run in runs if run["dataset"] == name and run["method"] == method]
            if not chosen:
                continue
            row: dict[str, Any] = {"dataset": name, "method": method, "seeds": len(chosen)}
            row["epochs"] = chosen[0]["epochs"]
            for key in MEASURES:
                values = [float(run[key]) for run in chosen]
                row[key] = {
                    "mean": statistics.mean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                }
            result.append(row)
    return result


def report(records: list[dict]) -> list[str]:
    found = {(row["dataset"], row["method"]): row for row in rows(records)}
    if not found:
        return [f"## {TITLE}", "", "No runs stored.", ""]

    def cell(row: dict, key: str) -> str:
        return f"{pct(row[key]['mean'])} ± {pct(row[key]['std'])}"

    header = ["data", "trained with", "seeds", "epochs", "clean top-1", "CutMix-mixed top-1", "CutMix-mixed top-2"]
    header += ["SMMix-mixed top-1", "SMMix-mixed top-2"]
    lines = [
        f"## {TITLE}",
        "",
        "```bash",
        "python -m experiments run cutmix_vs_smmix",
        "```",
        "",
        "Both methods train the demo's ViT (4 layers, width 128, patch 8) from scratch with the same recipe, seeds and "
        "epochs, and both alternate with Mixup at p = 0.5 as in the DeiT recipe, so CutMix vs SMMix in the other half "
        "of the batches is the only difference. `digits`: the bundled digits at 32 px (a 4 × 4 token grid; the digit "
        "fills the image). `canvas`: each digit at a random place and scale (40-75% of the side) on a 40 px canvas "
        "of uniform noise (a 5 × 5 grid; the object is local, as on ImageNet). Clean top-1 is on the 360 held-out "
        "images; the mixed-image columns are Fig. 5a's metric on held-out images mixed by CutMix or by SMMix (windows "
        "placed by the evaluated model's own attention), averaged over three pairings. Mean ± std over seeds, percent.",
        "",
    ]
    table_rows = [
        [name, method, row["seeds"], row["epochs"], *[cell(row, key) for key in MEASURES]]
        for (name, method), row in sorted(
            found.items(), key=lambda item: (list(DATASETS).index(item[0][0]), item[0][1])
        )
    ]
    lines += [*table(header, table_rows), ""]
    if all((name, method) in found for name in DATASETS for method in METHODS):
        d_cut, d_smm, c_cut, c_smm = (found[n, m] for n in DATASETS for m in METHODS)
        lines += [
            f"- **Clean accuracy: no gain from SMMix.** On the digits {cell(d_smm, 'clean_top1')} against "
            f"{cell(d_cut, 'clean_top1')}; on the canvas {cell(c_smm, 'clean_top1')} against "
            f"{cell(c_cut, 'clean_top1')}, within the seed spread. These models are small and trained for "
            f"{d_cut['epochs']}-{c_cut['epochs']} epochs on 1,437 images, far from converged.",
            f"- **Mixed-image top-2: each model is best on the mixes it was trained on.** On SMMix-mixed digits "
            f"SMMix-trained models score {pct(d_smm['smmix_mixed_top2']['mean'])} against "
            f"{pct(d_cut['smmix_mixed_top2']['mean'])}; on CutMix-mixed digits "
            f"{pct(d_smm['cutmix_mixed_top2']['mean'])} "
            f"against {pct(d_cut['cutmix_mixed_top2']['mean'])}. The paper's 48.3% vs 23.8% is not reproduced: the "
            "models are weak and SMMix's windows are small on these grids, so the source is a minor part of the image.",
            "- **The attention does what Eq. 7-8 need once the model has learned something:** on the canvas, a trained "
            "model's score is high on the digit and low on the noise (picture below, SMMix seed 0): the source window "
            "holds part of a digit and lands on background in the target.",
            "",
            "![SMMix on the canvas digits](images/evidence/show_mix_canvas_smmix.png)",
            "",
        ]
    return lines
