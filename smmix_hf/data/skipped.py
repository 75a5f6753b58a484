"""Logs how many images did not decode and were skipped: at the end of every epoch and of every evaluation."""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

from smmix_hf.data.images import SkipCounter

__all__ = ["SkippedImagesCallback"]

logger = logging.getLogger("smmix_hf")


def _report(counter: SkipCounter, when: str) -> None:
    new, total = counter.since_last_report(), counter.total()
    level = logging.WARNING if new else logging.INFO
    message = "%s: %d %s image(s) did not decode and were skipped (%d so far)."
    logger.log(level, message, when, new, counter.split, total)


class SkippedImagesCallback(TrainerCallback):
    """Reports the skip counters of the training and evaluation transforms."""

    def __init__(self, train: SkipCounter | None, evaluation: SkipCounter | None) -> None:
        self.train = train
        self.evaluation = evaluation

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.train is not None:
            _report(self.train, f"end of epoch {round(state.epoch or 0)}")

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.evaluation is not None:
            _report(self.evaluation, "evaluation")
