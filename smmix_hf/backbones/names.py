"""Short model names: every registered family's short names → Hub ids, and its from-scratch configurations.

Short names resolve to real Hub ids: ``deit-small`` and ``facebook/deit-small`` both mean
``facebook/deit-small-patch16-224``. :func:`builtin_config` builds the architecture of a known Hub id
without the network (the paper trains from scratch).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from smmix_hf.backbones.base import registered_backbones

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["MODEL_ALIASES", "builtin_config", "model_name_help", "resolve_model_name"]

MODEL_ALIASES: dict[str, str] = {
    alias: hub_id for family in registered_backbones() for alias, hub_id in family.short_names.items()
}


def resolve_model_name(name: str) -> str:
    """A short name's Hub id; local paths and full ids come back unchanged."""
    if os.path.isdir(name):
        return name
    return MODEL_ALIASES.get(name.lower(), name)


def builtin_config(model_id: str) -> PretrainedConfig:
    """The architecture of a known Hub id, built without the network."""
    for family in registered_backbones():
        config = family.scratch_config(model_id)
        if config is not None:
            return config
    known = ", ".join(sorted(set(MODEL_ALIASES)))
    raise ValueError(f"no built-in architecture for {model_id!r} to train from scratch; known names: {known}.")


def model_name_help() -> str:
    """The short names for a ``--model`` help text, one family after another."""
    return ", ".join(alias for alias in MODEL_ALIASES if "/" not in alias)
