#!/usr/bin/env python
"""Run many local-object training runs at once, each in its own process, on one device.

A plan is a list of runs ``(experiment, variant, warm-up, seed, epochs)`` in one regime of
``trap_common.REGIMES``. Worker processes take runs from a shared queue, longest first within each
priority group, and each finished run is written at once to ``experiments/results/<experiment>/`` as
JSON (a run already stored there is skipped, and so is a run that another pool has in flight: its
``.lock`` file, so pools of one plan can run side by side). After ``--deadline`` seconds no new run starts and the
runs in flight are stopped, so a time-limited machine returns every run that finished.

    python experiments/pool.py --plan canvas48 --device cuda --workers 14 --deadline 540

Plans (``PLANS``), from scratch in the 48 px canvas regime (the demo's ViT, patch 8):

* ``canvas48``: the trap and its fix at the 80-epoch budget, 5 seeds (CutMix, SMMix, SMMix with the
  motivation warm-up); the budget curve at 20 and 40 epochs, 3 seeds;
* ``tables48``: at 80 epochs, 3 seeds: Tab. 7's ablation rows (its CutMix and full-SMMix rows are the
  ``canvas48`` runs), the consistency target on probabilities, and δ ~ U(0, 1) (Tab. 8);
* ``region48``: at 80 epochs, 3 seeds: the separate region head (run on the CPU, ``--device cpu``).

One plan in the 32 px canvas regime (``--regime canvas32``), warm-started from the full-frame digits
checkpoint (``trap_common.pretrain``) at the fine-tuning learning rate of ``epoch_budget.py``:

* ``converge32``: at 80 epochs, 3 seeds: CutMix, SMMix, SMMix with oracle windows (``ink_oracle.py``) and
  SMMix with random windows; then CutMix and SMMix at 160 epochs, 3 seeds; then at 80 epochs SMMix with the
  motivation warm-up (``smmix_warmup25``, 5 seeds) and seeds 3-4 of CutMix and SMMix; then CutMix and SMMix at
  200 epochs, 3 seeds; then at 200 epochs SMMix with the motivation warm-up (5 seeds) and CutMix seeds 3-4.
* ``converge32_more``: SMMix seeds 3-4 at 200 epochs.
* ``converge32_fix``: the motivation warm-up in its CutMix form (``smmix_warmup25_cutmix``) at 200 epochs, 5 seeds.
* ``converge32_fix2``: the motivation warm-up in its two-part form (``smmix_warmup25_cutmix_random``: CutMix for the
  first half, random windows for the second) at 200 epochs, 5 seeds.
* ``tables32``: section 4's rows at convergence (200 epochs, the paper's schedule, 3 seeds), row by row: Tab. 7's
  max-min only, + L_con and + L_fine, then the consistency target on probabilities and the separate region head, then
  Tab. 8's δ ~ U(0, 1) and δ = 0.5 (the canvas32 default, δ ~ U(0.25, 0.75) drawn continuously, is the SMMix row).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

Run = tuple[str, str, str, int, int]  # experiment, variant, warm-up, seed, epochs


def canvas48_plan() -> list[list[Run]]:
    arms = ("cutmix", "smmix", "smmix_warmup25")
    trap = [("canvas48_trap", variant, "none", seed, 80) for seed in range(5) for variant in arms]
    short = [("canvas48_budget", variant, "none", seed, e) for e in (40, 20) for seed in range(3) for variant in arms]
    return [trap, short]


def tables48_plan(epochs: int = 80) -> list[list[Run]]:
    rows = ("maxmin_only", "maxmin_con", "maxmin_fine", "smmix_probs", "delta_u01")
    return [[("canvas48_tables", v, "none", s, epochs) for s in range(3) for v in rows]]


def region48_plan(epochs: int = 80) -> list[list[Run]]:
    runs = [("canvas48_tables", "smmix_region_head", "none", seed, epochs) for seed in range(3)]
    return [[*runs, ("canvas48_tables", "smmix_probs", "none", 1, epochs)]]


def converge32_plan(epochs: int = 80, long: int = 160, longest: int = 200) -> list[list[Run]]:
    arms = ("cutmix", "smmix", "smmix_ink_oracle", "random_windows")
    first = [("converge32", variant, "none", seed, epochs) for seed in range(3) for variant in arms]
    second = [("converge32", variant, "none", seed, long) for seed in range(3) for variant in arms[:2]]
    fix = ("cutmix", "smmix", "smmix_warmup25")  # the fix's 5-seed test: seeds 3 and 4 of CutMix and SMMix
    third = [("converge32", v, "none", s, epochs) for s in range(5) for v in fix if s >= 3 or v == fix[2]]
    fourth = [("converge32", variant, "none", seed, longest) for seed in range(3) for variant in arms[:2]]
    # the fix at convergence: the motivation warm-up (the package default) at 200 epochs, 5 seeds, and CutMix seeds 3-4
    fifth = [("converge32", "smmix_warmup25", "none", s, longest) for s in range(3)]
    fifth += [("converge32", "cutmix", "none", s, longest) for s in (3, 4)]
    fifth += [("converge32", "smmix_warmup25", "none", s, longest) for s in (3, 4)]
    return [first, second, third, fourth, fifth]


def converge32_more_plan(longest: int = 200) -> list[list[Run]]:
    """Seeds 3-4 of plain SMMix at 200 epochs, so that every arm of the fix's test has 5 seeds at convergence (a
    plan of its own, to run beside a ``converge32`` pool without taking its runs)."""
    return [[("converge32", "smmix", "none", seed, longest) for seed in (3, 4)]]


def converge32_fix_plan(longest: int = 200) -> list[list[Run]]:
    return [[("converge32", "smmix_warmup25_cutmix", "none", seed, longest) for seed in range(5)]]


def tables32_plan(longest: int = 200) -> list[list[Run]]:
    rows = ("maxmin_only", "maxmin_con", "maxmin_fine", "smmix_probs", "smmix_region_head", "delta_u01", "delta_half")
    return [[("converge32", row, "none", seed, longest) for row in rows for seed in range(3)]]


def converge32_fix2_plan(longest: int = 200) -> list[list[Run]]:
    """The motivation warm-up in its two-part form (CutMix for the first half, random windows for the second:
    ``smmix_warmup25_cutmix_random``) at 200 epochs, 5 seeds."""
    return [[("converge32", "smmix_warmup25_cutmix_random", "none", seed, longest) for seed in range(5)]]


PLANS = {
    "canvas48": canvas48_plan,
    "tables48": tables48_plan,
    "region48": region48_plan,
    "converge32": converge32_plan,
    "converge32_more": converge32_more_plan,
    "converge32_fix": converge32_fix_plan,
    "tables32": tables32_plan,
    "converge32_fix2": converge32_fix2_plan,
}


# Plans tied to one regime (their warm start was trained for it).
# Experiments tied to one regime, whose runs are warm-started: every plan with runs of such an experiment gets its
# regime and warm start, so a new plan cannot run them from scratch by mistake.
WARM_STARTED_EXPERIMENTS = {"converge32": "canvas32"}


def plan_regime(plan: str) -> str | None:
    """The regime a plan's warm-started runs need, or None when the plan has none."""
    regimes = {WARM_STARTED_EXPERIMENTS.get(run[0]) for group in PLANS[plan]() for run in group} - {None}
    if len(regimes) > 1:
        raise ValueError(f"plan {plan} mixes warm-started experiments of the regimes {sorted(regimes)}")
    return next(iter(regimes), None)


def plan_settings(plan: str) -> dict:
    """Per-plan training settings beyond the regime's: a plan of warm-started runs starts them from the
    full-frame digits checkpoint, at lr 1e-3."""
    if plan_regime(plan) is None:
        return {}
    from trap_common import PRETRAINED, pretrain

    if not (PRETRAINED / "config.json").exists():
        pretrain(PRETRAINED)
    return {"init": str(PRETRAINED), "learning_rate": 1e-3}


def claim(path: Path) -> bool:
    """Mark the run that writes ``path`` as this process's (``<path>.lock`` holds its pid), so that pools of the
    same plan side by side share its runs; False if a live process holds it. A dead holder's lock is taken over."""
    lock = path.with_suffix(".lock")
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)
                continue
        os.write(descriptor, str(os.getpid()).encode())
        os.close(descriptor)
        return True
    return False


def worker(
    queue: mp.Queue,
    regime_name: str,
    device: str,
    stop_at: float,
    seconds_per_epoch: float,
    settings: dict,
    parent: int,
) -> None:
    """Train runs from ``queue`` until it is empty, the deadline nears, or the pool process ``parent`` is gone
    (a killed pool leaves its spawned workers behind; they finish the run in hand and take no other)."""
    import torch

    torch.set_num_threads(1)
    from trap_common import REGIMES, load_splits, result_path, setup_threads, train_and_store

    setup_threads()
    regime = REGIMES[regime_name]
    splits, processor, held_out = load_splits(regime=regime)
    while time.time() < stop_at and os.getppid() == parent:
        try:
            experiment, variant, warmup, seed, epochs = queue.get_nowait()
        except Exception:
            return
        path = result_path(experiment, variant, warmup, epochs, seed)
        if path.exists() or time.time() + epochs * seconds_per_epoch > stop_at or not claim(path):
            continue
        try:
            train_and_store(
                path, variant, seed, epochs, splits, processor, held_out, warmup=warmup, regime=regime, device=device,
                output_dir=f"/tmp/smmix_pool_{os.getpid()}", **settings,
            )  # fmt: skip
        finally:
            path.with_suffix(".lock").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", choices=sorted(PLANS), required=True)
    parser.add_argument("--regime", default="canvas48")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--workers", type=int, default=14)
    parser.add_argument("--deadline", type=float, default=540.0, help="seconds after which no run starts or goes on")
    parser.add_argument(
        "--seconds-per-epoch", type=float, default=5.0, help="expected time of one epoch, to skip runs that cannot end"
    )
    args = parser.parse_args()
    regime = plan_regime(args.plan)
    if regime is not None and regime != args.regime:
        parser.error(f"--plan {args.plan} runs in --regime {regime}; got --regime {args.regime}.")
    from trap_common import result_path

    settings = plan_settings(args.plan)
    start = time.time()
    stop_at = start + args.deadline
    queue: mp.Queue = mp.get_context("spawn").Queue()
    pending = 0
    for group in PLANS[args.plan]():
        for run in sorted(group, key=lambda run: -run[4]):  # stable: equal budgets keep the plan's order
            experiment, variant, warmup, seed, epochs = run
            if not result_path(experiment, variant, warmup, epochs, seed).exists():
                queue.put(run)
                pending += 1
    print(f"{pending} runs to go, {args.workers} workers, deadline {args.deadline:.0f} s", flush=True)
    context = mp.get_context("spawn")
    processes = [
        context.Process(
            target=worker,
            args=(queue, args.regime, args.device, stop_at, args.seconds_per_epoch, settings, os.getpid()),
            daemon=True,
        )
        for _ in range(min(args.workers, pending))
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=max(0.0, stop_at - time.time()))
    for process in processes:
        if process.is_alive():
            process.terminate()
    print(f"pool finished after {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
