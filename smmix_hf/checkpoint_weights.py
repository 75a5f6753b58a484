"""Restoring a checkpoint's weights into a live model with the key renaming ``from_pretrained`` applies.

transformers 5 saves checkpoints in the original key format (``save_pretrained`` reverts its
renames, e.g. ``vit.layers.0.attention.q_proj`` is stored as
``vit.encoder.layer.0.attention.attention.query``), but ``Trainer._load_from_checkpoint`` feeds that
file to ``model.load_state_dict(strict=False)``: every renamed tensor is silently left at its
current value and a resumed run continues from partly re-initialised weights
(huggingface/transformers#43701). Loading through ``from_pretrained`` applies the renames; the
result is copied into the live model strictly, so a missing tensor is an error, not a warning.
"""

from __future__ import annotations

import os

from transformers import PreTrainedModel
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

__all__ = ["restore_checkpoint_weights"]


def restore_checkpoint_weights(model: PreTrainedModel, checkpoint: str) -> bool:
    """Copy the weights saved in ``checkpoint`` into ``model``; False if it holds no safetensors weights."""
    has_weights = any(
        os.path.isfile(os.path.join(checkpoint, name)) for name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
    )
    if not has_weights:
        return False
    saved = type(model).from_pretrained(checkpoint, config=model.config)
    model.load_state_dict(saved.state_dict(), strict=True)
    return True
