"""The studies, in the order of the evidence page. Each module has ``NAME``, ``TITLE``, ``report(records)`` (the
markdown of its section) and either ``plan(options)`` (its runs, trained by :func:`experiments.runner.run_plan`) or
``run(options)``; ``figures(records, directory)`` redraws its figures where it has any."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType

from experiments import store
from experiments.runner import Limits
from experiments.studies import budget32, canvas48, converge32, cutmix_vs_smmix, evaluator32, scratch32


@dataclasses.dataclass(frozen=True)
class Options:
    """What ``python -m experiments run`` was asked for; ``None`` keeps a study's own seeds and budgets."""

    seeds: list[int] | None = None
    epochs: list[int] | None = None
    limits: Limits = dataclasses.field(default_factory=Limits)
    results: Path = store.RESULTS
    workers: int = 1
    deadline: float | None = None


STUDIES: dict[str, ModuleType] = {
    module.NAME: module for module in (cutmix_vs_smmix, scratch32, budget32, evaluator32, canvas48, converge32)
}
