"""Train the runs of a study: one run in-process, or many at once in worker processes, each stored as it ends.

A run is a :class:`RunSpec`. :func:`run_plan` leaves out the runs already stored (:mod:`experiments.store`),
then trains the rest, longest first, either in this process or in ``workers`` spawned processes that take runs
from a shared queue (one torch thread each). After ``deadline`` seconds no run starts and the runs in flight are
stopped, so a time-limited machine keeps every run that ended; calling the study again trains what is missing.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from transformers import ViTForImageClassification, set_seed

from experiments import store
from experiments.arms import arm_settings
from experiments.ink_oracle import use_ink_oracle
from experiments.probe import MEASURES, WindowProbeCallback, window_hit_rates
from experiments.regime import RECIPE, REGIMES, HeldOut, build_model, load_splits, pretrain, quiet
from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data import collate_image_batch

WARM_START = Path(__file__).resolve().parents[1] / "outputs" / "experiments" / "digits_fullframe_vit"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run: an arm of a study at an epoch budget and a seed, from scratch or from the warm start."""

    regime: str
    variant: str
    seed: int
    epochs: int
    warmup: str = "none"
    learning_rate: float = 2e-3
    warm_start: bool = False
    width: int | None = None

    @property
    def init(self) -> str:
        return WARM_START.name if self.warm_start else "scratch"


@dataclasses.dataclass(frozen=True)
class Limits:
    """Where and how much: device, and the first ``max_train`` / ``max_eval`` images only (quick checks)."""

    device: str = "cpu"
    max_train: int | None = None
    max_eval: int | None = None
    output_dir: str = "/tmp/smmix_experiments"


def code_version() -> str:
    """The repository's commit, with ``+dirty`` when ``smmix_hf/`` has uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "smmix_hf"], cwd=root, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def spec_key(spec: RunSpec, train_images: int, kind: str = "run") -> tuple:
    regime = REGIMES[spec.regime]
    width = regime.width if spec.width is None else spec.width
    fields = dict(kind=kind, regime=spec.regime, variant=spec.variant, warmup=spec.warmup, seed=spec.seed)
    fields.update(epochs=spec.epochs, init=spec.init, learning_rate=spec.learning_rate, width=width)
    return store.run_key(dict(fields, train_images=train_images))


def arm_trainer(
    variant: str, warmup: str, epochs: int, model: torch.nn.Module, config: dict[str, Any], **trainer_kwargs: Any
) -> SMMixTrainer:
    """The trainer of an arm at an epoch budget: ``SMMixConfig`` from :data:`RECIPE`, the arm's settings and
    ``config`` (in that order, the later winning), with the arm's window scorer on its task."""
    overrides, scorer = arm_settings(variant, warmup, epochs)
    trainer = SMMixTrainer(model=model, args=SMMixConfig(**{**RECIPE, **overrides, **config}), **trainer_kwargs)
    if scorer == "ink_oracle":
        use_ink_oracle(trainer.task)
    return trainer


def train_run(
    spec: RunSpec, splits: Any, processor: Any, held_out: HeldOut, limits: Limits, kind: str = "run"
) -> tuple[store.Record, torch.nn.Module]:
    """Train one run; its record (with the per-epoch history) and the trained model."""
    regime = REGIMES[spec.regime]
    set_seed(spec.seed)
    if spec.warm_start:
        if not (WARM_START / "config.json").exists():
            pretrain(WARM_START, device=limits.device)
        model = ViTForImageClassification.from_pretrained(WARM_START)
    else:
        model = build_model(regime, spec.width)
    config = dict(
        output_dir=f"{limits.output_dir}/{os.getpid()}",
        region_sampling=regime.region_sampling,
        num_train_epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        seed=spec.seed,
        use_cpu=limits.device == "cpu",
    )
    probe = WindowProbeCallback(held_out, regime)
    trainer = arm_trainer(
        spec.variant,
        spec.warmup,
        spec.epochs,
        model,
        config,
        train_dataset=splits["train"],
        data_collator=collate_image_batch,
        processing_class=processor,
        callbacks=[probe],
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    final = window_hit_rates(model, held_out, regime)
    key = spec_key(spec, len(splits["train"]), kind)
    record = dict(zip(store.KEY_FIELDS, key, strict=True))
    record.update(
        region_sampling=regime.region_sampling,
        device=torch.cuda.get_device_name() if limits.device == "cuda" else limits.device,
        code=code_version(),
        train_seconds=round(seconds, 1),
        clean_top1=final["clean_top1"],
        random={name: final[f"{name}_random"] for name in MEASURES},
        history={name: [entry[name] for entry in probe.history] for name in ("clean_top1", "loss_cls", *MEASURES)},
    )
    return record, model


def _train_and_store(study: str, spec: RunSpec, data: tuple, limits: Limits, results: Path) -> None:
    record, _ = train_run(spec, *data, limits)
    store.append(study, record, results)
    print(
        f"{study}: {spec.variant} {spec.warmup} e{spec.epochs} s{spec.seed}: top-1 {record['clean_top1']:.3f}, "
        f"{record['train_seconds']:.0f} s",
        flush=True,
    )


def _worker(queue: Any, study: str, regime: str, limits: Limits, results: Path, stop_at: float, parent: int) -> None:
    """Train runs from ``queue`` until it is empty, the deadline passes, or the parent process is gone."""
    quiet()
    data = load_splits(REGIMES[regime], limits.max_train, limits.max_eval)
    while time.time() < stop_at and os.getppid() == parent:
        try:
            spec = queue.get_nowait()
        except Exception:
            return
        _train_and_store(study, spec, data, limits, results)


def run_plan(
    study: str,
    specs: list[RunSpec],
    limits: Limits,
    results: Path = store.RESULTS,
    workers: int = 1,
    deadline: float | None = None,
) -> int:
    """Train every run of ``specs`` not yet stored in the study's results; the number of runs it started."""
    regimes = {spec.regime for spec in specs}
    if len(regimes) > 1:
        raise ValueError(f"a plan runs in one regime; got {sorted(regimes)}")
    quiet()
    regime = REGIMES[regimes.pop()] if specs else None
    if regime is None:
        return 0
    if any(spec.warm_start for spec in specs) and not (WARM_START / "config.json").exists():
        pretrain(WARM_START, device=limits.device)
    data = load_splits(regime, limits.max_train, limits.max_eval)
    stored = store.stored_keys(study, results)
    pending = [spec for spec in specs if spec_key(spec, len(data[0]["train"])) not in stored]
    pending.sort(key=lambda spec: -spec.epochs)  # stable: equal budgets keep the plan's order
    print(f"{study}: {len(pending)} of {len(specs)} runs to train", flush=True)
    stop_at = time.time() + (deadline if deadline is not None else float("inf"))
    if workers <= 1:
        for spec in pending:
            if time.time() >= stop_at:
                break
            _train_and_store(study, spec, data, limits, results)
        return len(pending)
    context = mp.get_context("spawn")
    queue = context.Queue()
    for spec in pending:
        queue.put(spec)
    arguments = (queue, study, regime.name, limits, results, stop_at, os.getpid())
    processes = [
        context.Process(target=_worker, args=arguments, daemon=True) for _ in range(min(workers, len(pending)))
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=None if deadline is None else max(0.0, stop_at - time.time()))
    for process in processes:
        if process.is_alive():
            process.terminate()
    return len(pending)
