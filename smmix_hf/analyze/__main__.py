"""``python -m smmix_hf.analyze {mixed-accuracy,show-mix} ...``: evidence of what mixing does.

Examples::

    python -m smmix_hf.analyze mixed-accuracy --model outputs/demo --dataset sklearn-digits --crop_pct 1 \\
        --method smmix cutmix
    python -m smmix_hf.analyze show-mix --model outputs/demo --dataset sklearn-digits --crop_pct 1 \\
        --method smmix --num 8 --output mix.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from transformers import AutoModelForImageClassification

from smmix_hf.analyze.loading import load_checkpoint, load_split
from smmix_hf.analyze.mixed_accuracy import mixed_accuracy
from smmix_hf.analyze.mixing import EVAL_MIX_METHODS
from smmix_hf.analyze.show_mix import show_mix
from smmix_hf.backbones.names import resolve_model_name

__all__ = ["build_parser", "main"]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="A training output directory (or Hub id) to analyse.")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--dataset", help="sklearn-digits, or a dataset for datasets.load_dataset.")
    data.add_argument("--data_dir", help="An image folder with one sub-folder per class.")
    parser.add_argument("--split", default="validation", help="Split of --dataset (default: validation).")
    parser.add_argument("--image_column", default="image")
    parser.add_argument("--label_column", default="label")
    parser.add_argument("--crop_pct", type=float, default=0.875, help="Evaluation centre-crop share, as in training.")
    parser.add_argument("--max_samples", type=int, default=None, help="Use the first N images only.")
    parser.add_argument("--seed", type=int, default=0, help="Seeds the pairing and the window / box draws.")
    parser.add_argument(
        "--motivator", default=None, help="Place SMMix windows with this model's attention instead of --model's."
    )
    parser.add_argument("--region_scale", type=float, nargs=2, default=(0.25, 0.75), metavar=("MIN", "MAX"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m smmix_hf.analyze", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    accuracy = commands.add_parser(
        "mixed-accuracy", help="Fig. 5a: top-1 / top-2 accuracy on images mixed by each method."
    )
    _add_common(accuracy)
    accuracy.add_argument("--method", nargs="+", choices=EVAL_MIX_METHODS, default=list(EVAL_MIX_METHODS))
    accuracy.add_argument("--batch_size", type=int, default=64)
    accuracy.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    show = commands.add_parser("show-mix", help="A PNG grid: source, target, attention, mixed image, labels.")
    _add_common(show)
    show.add_argument("--method", choices=EVAL_MIX_METHODS, default=EVAL_MIX_METHODS[0])
    show.add_argument("--num", type=int, default=8, help="Rows (mixed samples) in the grid.")
    show.add_argument("--output", required=True, help="Where to write the PNG.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model, processor = load_checkpoint(args.model)
    scorer = None
    if args.motivator:
        scorer = AutoModelForImageClassification.from_pretrained(resolve_model_name(args.motivator))
    split = load_split(
        processor,
        dataset=args.dataset,
        data_dir=args.data_dir,
        split=args.split,
        image_column=args.image_column,
        label_column=args.label_column,
        crop_pct=args.crop_pct,
        max_samples=args.max_samples,
        seed=args.seed,
    )
    region_scale = tuple(args.region_scale)
    if args.command == "show-mix":
        grid = show_mix(
            model, split, args.method, count=args.num, seed=args.seed, scorer=scorer, region_scale=region_scale,
            mean=getattr(processor, "image_mean", None), std=getattr(processor, "image_std", None),
        )  # fmt: skip
        directory = os.path.dirname(os.path.abspath(args.output))
        os.makedirs(directory, exist_ok=True)
        grid.save(args.output)
        print(f"wrote {args.output} ({grid.width}x{grid.height})")
        return 0
    results = [
        mixed_accuracy(
            model, split, method, batch_size=args.batch_size, seed=args.seed, scorer=scorer, region_scale=region_scale
        )
        for method in args.method
    ]
    print(f"{'mixed by':<10} {'top-1':>7} {'top-2':>7} {'images':>7}")
    for result in results:
        print(f"{result.method:<10} {result.top1:>7.4f} {result.top2:>7.4f} {result.images:>7d}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"model": args.model, "results": [result.as_dict() for result in results]}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
