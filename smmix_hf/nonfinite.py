"""The first non-finite training loss, tracked on the device without a host synchronisation per step."""

from __future__ import annotations

import torch

__all__ = ["NonFiniteTracker"]


class NonFiniteTracker:
    """Remembers the first step whose loss was NaN or infinite; :meth:`check` raises once one was seen.

    :meth:`track` never reads the loss on the host; the Trainer calls :meth:`check` where it reads or
    saves anyway (logging, checkpoints, the final save), so no checkpoint holds diverged weights.
    """

    def __init__(self) -> None:
        self.first_bad_step: torch.Tensor | None = None

    def track(self, loss: torch.Tensor, step: int) -> None:
        if self.first_bad_step is None:
            self.first_bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
        newly_bad = ~torch.isfinite(loss.detach()) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(newly_bad, step, self.first_bad_step)

    def check(self, before: str) -> None:
        if self.first_bad_step is None or int(self.first_bad_step) < 0:
            return
        raise FloatingPointError(
            f"the training loss became non-finite at step {int(self.first_bad_step)}; stopped before {before}, so "
            "no checkpoint holds the diverged weights. Lower the learning rate, enable gradient clipping "
            "(--max_grad_norm) or use bf16 instead of fp16, then resume from the last checkpoint."
        )
