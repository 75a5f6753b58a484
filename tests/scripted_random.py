"""One stream of uniforms served through both numpy interfaces, so that timm's ``Mixup`` (which calls the legacy
``np.random`` functions) and our methods (a ``numpy.random.Generator``) can be fed the same randomness.

Every call consumes exactly one uniform ``u`` of a seeded ``default_rng``: ``rand`` / ``random`` return ``u``;
``beta(a, b)`` returns the Beta(a, b) quantile of ``u``; ``randint`` / ``integers(low, high)`` return
``low + ⌊u·(high - low)⌋``. Two streams with the same seed therefore give the same values for the same calls,
and :attr:`log` records the calls (kind and parameters) so that their order can be compared too.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
from scipy.stats import beta as beta_distribution

__all__ = ["ScriptedRandom", "numpy_with_random"]


class ScriptedRandom:
    def __init__(self, seed: int) -> None:
        self._uniforms = np.random.default_rng(seed)
        self.log: list[tuple[Any, ...]] = []

    def _next(self, *call: Any) -> float:
        self.log.append(call)
        return float(self._uniforms.random())

    def random(self, size: None = None) -> float:
        assert size is None, "one draw at a time"
        return self._next("uniform")

    rand = random

    def beta(self, a: float, b: float, size: None = None) -> float:
        assert size is None, "one draw at a time"
        return float(beta_distribution.ppf(self._next("beta", float(a), float(b)), a, b))

    def integers(self, low: int, high: int, size: None = None) -> int:
        assert size is None, "one draw at a time"
        low, high = int(low), int(high)
        return low + math.floor(self._next("integers", low, high) * (high - low))

    randint = integers


def numpy_with_random(random: ScriptedRandom | np.random.RandomState) -> ModuleType:
    """A stand-in for the ``numpy`` module whose ``random`` is ``random`` (for ``monkeypatch.setattr``)."""
    stand_in = ModuleType("numpy")
    stand_in.__dict__.update(np.__dict__)
    stand_in.random = random  # type: ignore[assignment]
    return stand_in
