"""The last layer's attention probabilities of a transformers model, read through its attention interface.

transformers models on the attention interface (``_supports_attention_backend``) compute attention with whatever
function ``config._attn_implementation`` names in ``AttentionInterface``: ``sdpa`` by default, ``flash_attention_*``,
``flex_attention``, or the model's own eager code. SDPA and flash never form the probabilities
(transformers#30978), and switching the whole model to eager makes a training step about 10× slower on a CPU.

So the probe registers one function per implementation, ``smmix_<implementation>``, and switches the model to it:

* everywhere (every layer of every forward, the last layer of the training forward included) it calls the model's
  own implementation, unchanged;
* on one attention module, armed by the probe for the motivated forward only (Eq. 6), it also forms
  ``softmax(q·kᵀ·scaling + mask)`` in float32 from the query and key the module passes (after its own rotary or
  normalisation) and keeps it.

The mark is an attribute of that module whose ``copy.deepcopy`` is nothing, so a copy of the model (an EMA) reads
through its own implementation and never into the probe. :func:`restore_implementation` puts the model's own
implementation back; the saved configuration never names ours (transformers does not serialise it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

__all__ = ["IMPLEMENTATION_PREFIX", "AttentionRecorder", "record_attention", "restore_implementation"]

IMPLEMENTATION_PREFIX = "smmix_"
_RECORDER_ATTRIBUTE = "_smmix_attention_recorder"


@dataclass
class AttentionRecorder:
    """Kept on the recorded attention module: armed during the motivated forward, it keeps the probabilities
    ``[B, heads, T, T]`` of that forward. ``copy.deepcopy`` gives None: a copied model records nothing."""

    armed: bool = False
    probabilities: torch.Tensor | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        return None

    def take(self) -> torch.Tensor | None:
        probabilities, self.probabilities = self.probabilities, None
        return probabilities


def _probabilities(
    query: torch.Tensor, key: torch.Tensor, attention_mask: torch.Tensor | None, scaling: float | None
) -> torch.Tensor:
    """``softmax(q·kᵀ·scaling + mask)`` in float32, ``[B, heads, T, T]``, from ``[B, heads, T, d]`` query and key."""
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    if key.shape[1] != query.shape[1]:  # grouped key / value heads
        key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
    logits = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scaling
    if attention_mask is not None:
        logits = logits + attention_mask.float()
    return logits.softmax(dim=-1)


def _eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain attention transformers' eager functions compute, for a model whose own implementation is eager."""
    weights = _probabilities(query, key, attention_mask, scaling).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    if value.shape[1] != weights.shape[1]:
        value = value.repeat_interleave(weights.shape[1] // value.shape[1], dim=1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _recording_attention(
    implementation: str,
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``smmix_<implementation>``: the model's own ``implementation``; on the armed module, also its probabilities."""
    if implementation == "eager":
        output, weights = _eager_attention(module, query, key, value, attention_mask, scaling, dropout)
    else:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        function = ALL_ATTENTION_FUNCTIONS[implementation]
        output, weights = function(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    recorder = getattr(module, _RECORDER_ATTRIBUTE, None)
    if recorder is not None and recorder.armed:
        recorder.probabilities = _probabilities(query.detach(), key.detach(), attention_mask, scaling)
    return output, weights


def _registered_name(implementation: str) -> str:
    """Register ``smmix_<implementation>`` with transformers' ``AttentionInterface`` once; its name."""
    from transformers import AttentionInterface

    name = f"{IMPLEMENTATION_PREFIX}{implementation}"
    if name not in AttentionInterface._global_mapping:
        AttentionInterface.register(name, partial(_recording_attention, implementation))
    return name


def _implementations(model: nn.Module) -> dict[str, str]:
    """The model's attention implementation by sub-configuration (``""``: the model's own configuration)."""
    config = model.config
    found = {"": config._attn_implementation}
    configs_in_use = {id(getattr(module, "config", None)) for module in model.modules()}
    for key in getattr(config, "sub_configs", {}) or {}:
        sub_config = getattr(config, key, None)
        if id(sub_config) in configs_in_use and getattr(sub_config, "_attn_implementation", None):
            found[key] = sub_config._attn_implementation  # sub-models the model has (SigLIP's vision, not its text)
    return found


def record_attention(model: nn.Module, module: nn.Module) -> AttentionRecorder:
    """Switch ``model`` to the recording implementations and mark ``module`` (its last attention module)."""
    implementations = _implementations(model)
    own = {key: value.removeprefix(IMPLEMENTATION_PREFIX) for key, value in implementations.items()}
    recording = {key: _registered_name(value) for key, value in own.items()}
    if recording != implementations:
        model.set_attn_implementation(recording)
    recorder = getattr(module, _RECORDER_ATTRIBUTE, None)
    if recorder is None:
        recorder = AttentionRecorder()
        setattr(module, _RECORDER_ATTRIBUTE, recorder)
    return recorder


def restore_implementation(model: nn.Module, module: nn.Module) -> None:
    """Undo :func:`record_attention`: the model's own implementations, no mark on ``module``."""
    implementations = _implementations(model)
    own = {key: value.removeprefix(IMPLEMENTATION_PREFIX) for key, value in implementations.items()}
    if own != implementations:
        model.set_attn_implementation(own)
    if hasattr(module, _RECORDER_ATTRIBUTE):
        delattr(module, _RECORDER_ATTRIBUTE)
