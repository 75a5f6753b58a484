"""How to call an image classifier and read its logits, whatever library built it and whatever wraps it.

A transformers model takes its images by keyword (``model(pixel_values=x)``, its ``main_input_name``) and
returns an output object with ``.logits``; a timm model takes them positionally and returns the logits
tensor. A training loop may hand over the model wrapped in DDP, FSDP or ``torch.compile``; SMMix's hooks sit on
the unwrapped model, while its forwards go through the wrapper (FSDP gathers parameters only there).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["classifier_logits", "input_keyword", "unwrap_model"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP / DataParallel / FSDP (``module``) and ``torch.compile`` (``_orig_mod``) wrappers."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while True:
        if isinstance(model, (DistributedDataParallel, DataParallel, FullyShardedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def input_keyword(model: nn.Module) -> str | None:
    """The keyword a model takes its images by (``pixel_values`` for transformers), None for a positional call."""
    name = getattr(unwrap_model(model), "main_input_name", None)
    return name if isinstance(name, str) else None


def classifier_logits(runner: nn.Module, images: torch.Tensor, keyword: str | None) -> torch.Tensor:
    """The ``[B, C]`` logits of ``runner(images)``: by ``keyword`` when given, ``.logits`` of an output object."""
    output = runner(**{keyword: images}) if keyword is not None else runner(images)
    logits = getattr(output, "logits", output)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError(
            f"{type(unwrap_model(runner)).__name__} returned {type(output).__name__}, not [batch, classes] logits; "
            "SMMix trains a classifier whose forward returns logits (a tensor or an output with .logits)."
        )
    return logits
