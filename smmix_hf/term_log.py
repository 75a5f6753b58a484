"""Running means of the loss terms and the share of batches per mixing method, for the Trainer's logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import torch

__all__ = ["LossTermLog"]


class LossTermLog:
    """Accumulates each batch's loss terms on the device; :meth:`flush` averages them over the logging window.

    Nothing is read on the host until :meth:`flush`, which the Trainer calls when it logs anyway. ``gather``
    averages the per-process sums over a distributed run (the Trainer's ``nested_gather``).
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()

    def record(self, method: str, terms: dict[str, torch.Tensor]) -> None:
        self.methods[method] += 1
        for name, value in terms.items():
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] += 1

    def flush(self, term_names: Sequence[str], gather: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        """``{term: mean}`` for the terms seen, ``mix_share_<method>`` per method, and a reset."""
        logs: dict[str, float] = {}
        if not self.methods:
            return logs
        names = [name for name in term_names if self.counts[name]]
        if names:
            sums = gather(torch.stack([self.sums[name] for name in names])).view(-1, len(names)).mean(dim=0)
            for name, total in zip(names, sums.tolist(), strict=True):
                logs[name] = total / self.counts[name]
        batches = sum(self.methods.values())
        for method, count in sorted(self.methods.items()):
            logs[f"mix_share_{method}"] = count / batches
        self.sums.clear()
        self.counts.clear()
        self.methods.clear()
        return logs
