"""``StepClock``: where a training task is in its run, from its own count of training calls.

A **call** is one training batch handed to the task (a micro-batch under gradient accumulation). An **optimizer
step** is ``accumulation_steps`` calls; the last one of an epoch takes the calls that are left, as the
``transformers`` Trainer and Lightning group them. The clock reads two things from the count, each on its own
scale:

* ``epoch``: the fractional epoch, ``epoch + calls done by the last optimizer step / steps_per_epoch``, the
  Trainer's ``state.epoch``; ``mix_off_epoch`` and ``motivation_warmup_epochs`` read it;
* ``progress``: the share of the run's optimizer steps done, ``optimizer steps / total_steps``, the Trainer's
  ``global_step / max_steps``; the motivation warm-up by ratio reads it.

``steps_per_epoch`` counts calls (``len(loader)``: the Trainer's ``steps_in_epoch``, Lightning's
``num_training_batches``); ``total_steps`` counts optimizer steps (the Trainer's ``max_steps``, Lightning's
``estimated_stepping_batches``, a scheduler's total). Without accumulation both count batches.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["StepClock"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1; got {value!r}.")
    return int(value)


class StepClock:
    """Counts a task's training calls and turns the count into the run's epoch and progress.

    Its state (``state_dict`` / ``load_state_dict``) is the count alone: the run's length comes from the loop.
    """

    def __init__(
        self, total_steps: int | None = None, steps_per_epoch: int | None = None, accumulation_steps: int = 1
    ) -> None:
        self.total_steps: int | None = None
        self.steps_per_epoch: int | None = None
        self.accumulation_steps = 1
        self.calls = 0
        self.set_run_length(total_steps, steps_per_epoch, accumulation_steps)

    def set_run_length(
        self, total_steps: int | None = None, steps_per_epoch: int | None = None, accumulation_steps: int | None = None
    ) -> None:
        """Sets the lengths given (``None`` leaves one as it is); the count stays."""
        if total_steps is not None:
            self.total_steps = _positive_int("total_steps", total_steps)
        if steps_per_epoch is not None:
            self.steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        if accumulation_steps is not None:
            self.accumulation_steps = _positive_int("accumulation_steps", accumulation_steps)

    def tick(self) -> None:
        """One training call is done."""
        self.calls += 1

    @property
    def epoch(self) -> float | None:
        """The fractional epoch of the next call; None without ``steps_per_epoch``."""
        if self.steps_per_epoch is None:
            return None
        epoch, call = divmod(self.calls, self.steps_per_epoch)
        done = call - call % self.accumulation_steps  # calls of this epoch the last optimizer step took
        return epoch + done / self.steps_per_epoch

    @property
    def optimizer_steps(self) -> int:
        """Optimizer steps done before the next call."""
        accumulation = self.accumulation_steps
        if self.steps_per_epoch is None:
            return self.calls // accumulation
        epoch, call = divmod(self.calls, self.steps_per_epoch)
        return epoch * math.ceil(self.steps_per_epoch / accumulation) + call // accumulation

    @property
    def progress(self) -> float | None:
        """The share of the run's optimizer steps done before the next call, in [0, 1]; None without
        ``total_steps``."""
        if self.total_steps is None:
            return None
        return min(self.optimizer_steps / self.total_steps, 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = int(state["calls"])
