"""``python -m experiments run <study>`` trains a study's missing runs; ``report <study>|all`` prints or writes its
markdown (``report all --write docs/evidence.md`` is the evidence page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import store


def main(argv: list[str] | None = None) -> None:
    from experiments.studies import STUDIES

    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the runs of a study that are not stored yet")
    run.add_argument("study", choices=sorted(STUDIES))
    run.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the study's)")
    run.add_argument("--epochs", type=int, nargs="+", help="epoch budgets (default: the study's)")
    run.add_argument("--workers", type=int, default=1, help="runs at once, one process and one thread each")
    run.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    run.add_argument("--deadline", type=float, help="seconds after which no run starts and runs in flight stop")
    run.add_argument("--max-train", type=int, help="train on the first N training images only (quick checks)")
    run.add_argument("--max-eval", type=int, help="measure on the first N held-out images only (quick checks)")
    report = commands.add_parser("report", help="the markdown of a study, or of the whole evidence page")
    report.add_argument("study", choices=[*sorted(STUDIES), "all"])
    report.add_argument("--write", type=Path, help="write the markdown to this file instead of printing it")
    report.add_argument("--figures", type=Path, help="redraw the figures into this directory")
    for command in (run, report):
        command.add_argument("--results", type=Path, default=store.RESULTS, help="directory of the <study>.jsonl files")
    args = parser.parse_args(argv)
    if args.command == "run":
        run_study(args, STUDIES[args.study])
    else:
        report_study(args, STUDIES)


def run_study(args: argparse.Namespace, module: object) -> None:
    from experiments.runner import Limits, run_plan
    from experiments.studies import Options

    limits = Limits(device=args.device, max_train=args.max_train, max_eval=args.max_eval)
    options = Options(args.seeds, args.epochs, limits, args.results, args.workers, args.deadline)
    if hasattr(module, "run"):
        module.run(options)
    else:
        run_plan(module.NAME, module.plan(options), limits, args.results, args.workers, args.deadline)


def report_study(args: argparse.Namespace, studies: dict) -> None:
    from experiments.evidence import page

    names = list(studies) if args.study == "all" else [args.study]
    if args.study == "all":
        text = page(args.results)
    else:
        text = "\n".join(studies[args.study].report(store.load(args.study, args.results)))
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        for name in names:
            if hasattr(studies[name], "figures"):
                studies[name].figures(store.load(name, args.results), args.figures)
    if args.write is not None:
        args.write.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
