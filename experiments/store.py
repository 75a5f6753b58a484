"""The results of a study: one JSON Lines file, ``<results>/<study>.jsonl``, one record a line.

Every record has a ``kind``. A training run (``kind: run``, or ``evaluator`` for the fixed evaluator) holds its
arm, seed, epoch budget, regime and settings, its final held-out clean top-1, the window hit rates of uniformly
placed windows (``random``, the same at every epoch) and its per-epoch ``history``, column by column (epoch
``i + 1`` is index ``i``): ``clean_top1``, ``loss_cls`` and the window measures of :mod:`experiments.probe`.
Other kinds hold what a study measures besides runs (``repeat``, ``oracle_windows``, ``aggregate``).

A run is stored once per :func:`run_key`: the runner skips a run whose key is stored, so a study called again
trains only what is missing. Records are appended under an exclusive lock, one line at a time.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Any

Record = dict[str, Any]
RESULTS = Path(__file__).resolve().parent / "results"
KEY_FIELDS = ("kind", "regime", "variant", "warmup", "seed", "epochs", "init", "learning_rate", "width", "train_images")


def results_path(study: str, results: Path = RESULTS) -> Path:
    return results / f"{study}.jsonl"


def load(study: str, results: Path = RESULTS) -> list[Record]:
    """Every record of a study, in file order; none when the study has no file yet."""
    path = results_path(study, results)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append(study: str, record: Record, results: Path = RESULTS) -> None:
    """Add one record as a line at the end of the study's file."""
    path = results_path(study, results)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(line)
        fcntl.flock(handle, fcntl.LOCK_UN)


def run_key(record: Record) -> tuple:
    return tuple(record.get(field) for field in KEY_FIELDS)


def stored_keys(study: str, results: Path = RESULTS) -> set[tuple]:
    return {run_key(record) for record in load(study, results)}


def runs(records: list[Record], kind: str = "run") -> list[Record]:
    return [record for record in records if record["kind"] == kind]
