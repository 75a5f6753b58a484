"""SMMix (Self-Motivated Image Mixing for Vision Transformers, ICCV 2023) for transformers.

``SMMixTask`` is SMMix's training step for any loop (timm's, Lightning's, a plain PyTorch or ``accelerate`` loop);
``SMMixTrainer`` is a ``transformers.Trainer`` that calls it; ``MixSettings`` holds the method's knobs and
``SMMixConfig`` the Trainer's arguments; a ``WindowScorer`` places the windows (the model's own attention by
default). ``import smmix_hf`` is cheap: each of them (and with it torch and transformers) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["MixSettings", "SMMixConfig", "SMMixTask", "SMMixTrainer", "WindowScorer"]
__version__ = "0.1.0"

_LAZY = {
    "MixSettings": "smmix_hf.methods",
    "SMMixConfig": "smmix_hf.config",
    "SMMixTask": "smmix_hf.task",
    "SMMixTrainer": "smmix_hf.trainer",
    "WindowScorer": "smmix_hf.scorer",
}

if TYPE_CHECKING:
    from smmix_hf.config import SMMixConfig
    from smmix_hf.methods import MixSettings
    from smmix_hf.scorer import WindowScorer
    from smmix_hf.task import SMMixTask
    from smmix_hf.trainer import SMMixTrainer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'smmix_hf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
