"""SMMix (Self-Motivated Image Mixing for Vision Transformers, ICCV 2023) for transformers.

``import smmix_hf`` is cheap: ``SMMixConfig`` and ``SMMixTrainer`` (and with them torch and
transformers) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["SMMixConfig", "SMMixTrainer"]
__version__ = "0.1.0"

_LAZY = {"SMMixConfig": "smmix_hf.config", "SMMixTrainer": "smmix_hf.trainer"}

if TYPE_CHECKING:
    from smmix_hf.config import SMMixConfig
    from smmix_hf.trainer import SMMixTrainer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'smmix_hf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
