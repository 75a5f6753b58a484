"""The separate region head: a second linear classifier for the pooled window tokens of L_fine (Eq. 10-13).

The paper's Eq. 12-13 apply the model's classifier to the tokens pooled inside and outside the pasted
window (``region_head: shared``, the default). The official code gives them a second linear head of
the classifier's shape instead (``region_head: separate``), and notes the two perform alike.

The separate head is registered on the model as the submodule ``smmix_region_head`` before the Trainer
wraps it, so DDP, FSDP and the optimizer see it like any other parameter, and the region logits are
computed inside the model's forward (:class:`~smmix_hf.backbones.probe.SMMixProbe`). It is training
machinery only: the saved model weights leave it out (``_keys_to_ignore_on_save``), so a saved model
and every checkpoint load as the stock architecture; it travels beside them in
``smmix_region_head.safetensors``, from which a resumed run restores it.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "REGION_HEADS",
    "REGION_HEAD_ATTRIBUTE",
    "REGION_HEAD_FILE",
    "attach_region_head",
    "load_region_head",
    "region_head_keys",
    "region_head_of",
    "save_region_head",
]

REGION_HEADS = ("shared", "separate")
REGION_HEAD_ATTRIBUTE = "smmix_region_head"
REGION_HEAD_FILE = "smmix_region_head.safetensors"


def region_head_of(model: nn.Module) -> nn.Linear | None:
    """The model's separate region head, or None when L_fine uses the model's classifier."""
    head = getattr(model, REGION_HEAD_ATTRIBUTE, None)
    return head if isinstance(head, nn.Linear) else None


def attach_region_head(model: nn.Module, classifier: nn.Module) -> nn.Linear:
    """Register a fresh linear head shaped like ``classifier`` on ``model`` (once) and leave it out of saves.

    Initialised as timm initialises a ViT head (weights ~ N(0, 0.02²) truncated at ±2σ, bias 0).
    """
    existing = region_head_of(model)
    if existing is not None:
        return existing
    if not isinstance(classifier, nn.Linear):
        raise ValueError(
            f"region_head=separate needs a linear classifier to copy the shape of; {type(model).__name__}'s is "
            f"{type(classifier).__name__}. Use region_head=shared."
        )
    head = nn.Linear(classifier.in_features, classifier.out_features)
    head.to(device=classifier.weight.device, dtype=classifier.weight.dtype)
    with torch.no_grad():
        nn.init.trunc_normal_(head.weight, std=0.02, a=-0.04, b=0.04)
        nn.init.zeros_(head.bias)
    setattr(model, REGION_HEAD_ATTRIBUTE, head)
    model._keys_to_ignore_on_save = set(getattr(model, "_keys_to_ignore_on_save", None) or ()) | region_head_keys(model)
    return head


def region_head_keys(model: nn.Module) -> set[str]:
    """The model's state-dict keys of its separate region head (none without one)."""
    head = region_head_of(model)
    return set() if head is None else {f"{REGION_HEAD_ATTRIBUTE}.{name}" for name, _ in head.named_parameters()}


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a parameter sharded by FSDP2 (a DTensor; a collective), else the tensor itself."""
    full_tensor = getattr(tensor, "full_tensor", None)
    return full_tensor() if callable(full_tensor) else tensor


def save_region_head(model: nn.Module, output_dir: str, write: bool) -> None:
    """Write the separate head to ``output_dir/smmix_region_head.safetensors`` (where ``write``).

    Every process must call it: under FSDP2 the head's shards are gathered collectively.
    """
    head = region_head_of(model)
    if head is None:
        return
    tensors = {name: _full(param.detach()).cpu().contiguous() for name, param in head.named_parameters()}
    if write:
        os.makedirs(output_dir, exist_ok=True)
        save_file(tensors, os.path.join(output_dir, REGION_HEAD_FILE))


def load_region_head(model: nn.Module, checkpoint: str) -> None:
    """Restore the separate head saved in ``checkpoint``; a checkpoint without it is an error."""
    head = region_head_of(model)
    if head is None:
        return
    path = os.path.join(checkpoint, REGION_HEAD_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"{checkpoint} holds no {REGION_HEAD_FILE}, so the separate region head cannot be resumed; "
            "resume with the region_head the checkpoint was trained with."
        )
    saved = load_file(path)
    with torch.no_grad():
        for name, param in head.named_parameters():
            value = saved[name].to(dtype=param.dtype)
            distribute = getattr(param, "device_mesh", None)
            if distribute is not None:  # FSDP2: keep this process's shard
                from torch.distributed.tensor import distribute_tensor

                value = distribute_tensor(value.to(param.device_mesh.device_type), param.device_mesh, param.placements)
            param.copy_(value.to(param.device) if distribute is None else value)
