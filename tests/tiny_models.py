"""Tiny classifiers of every registered backbone family, sized for 32 px digits (no network).

Each family's shape is its own ``tiny_config(**overrides)`` classmethod (in ``smmix_hf/backbones/<family>.py``),
so a family added to the registry appears in :data:`TINY_FAMILIES` (and a transformers family in
:data:`TINY_MODELS`), and in every test parametrised over it, without an edit here. ``tiny_vit`` and the other
named builders are kept for the tests that need one family.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from transformers import AutoModelForImageClassification, PreTrainedModel

from smmix_hf.backbones import registered_backbones
from smmix_hf.backbones.base import TimmBackbone
from smmix_hf.backbones.vit import TINY_SHAPE

VIT_SHAPE = TINY_SHAPE
# The tiny ViT as ``--config_overrides`` of a from-scratch ``deit-tiny`` (one layer: the fastest CLI runs).
TINY_VIT_OVERRIDES = (
    "image_size=32,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"
)


def families_without_tiny_config() -> list[str]:
    """Registered families whose ``tiny_config()`` gives nothing: the generic tests cannot cover them."""
    return [family.name for family in registered_backbones() if family.tiny_config() is None]


def tiny_model(family: str, **overrides) -> PreTrainedModel:
    """The family's tiny classifier, its configuration changed by ``overrides``."""
    cls = {registered.name: registered for registered in registered_backbones()}[family]
    config = cls.tiny_config(**overrides)
    cls.prepare_config(config)  # as load_model does: e.g. DeiT's trainable classifier class
    return AutoModelForImageClassification.from_config(config)


def tiny_vit(**overrides) -> PreTrainedModel:
    return tiny_model("vit", **overrides)


def tiny_deit(**overrides) -> PreTrainedModel:
    return tiny_model("deit", **overrides)


def tiny_swin(window_size: int = 4, **overrides) -> PreTrainedModel:
    """Two stages; the last one is 8×8 tokens, so window 4 gives four (shifted) windows, 8 gives one."""
    return tiny_model("swin", window_size=window_size, **overrides)


def tiny_pvt(**overrides) -> PreTrainedModel:
    """Two stages with total stride 8: a 4×4 grid plus a class token in the last stage."""
    return tiny_model("pvt", **overrides)


def tiny_beit(**overrides) -> PreTrainedModel:
    """ViT shape with BEiT's relative position bias in every layer, layer scale and a mean-pooled head."""
    return tiny_model("beit", **overrides)


# family name -> builder, for every registered family with a tiny configuration, in registration order.
TINY_FAMILIES: dict[str, Callable[..., PreTrainedModel]] = {
    family.name: partial(tiny_model, family.name)
    for family in registered_backbones()
    if family.name not in families_without_tiny_config()
}
# The transformers families among them (their head is ``model.classifier``; a timm model's is
# ``timm_model.head``): test_trainer.py names ``classifier.weight``.
TINY_MODELS: dict[str, Callable[..., PreTrainedModel]] = {
    name: build
    for name, build in TINY_FAMILIES.items()
    if not issubclass({family.name: family for family in registered_backbones()}[name], TimmBackbone)
}


def timm_model(architecture: str, model_args: dict, kind: str = "raw", num_classes: int = 10) -> torch.nn.Module:
    """A timm model from scratch, as ``timm.create_model`` returns it (``kind="raw"``) or inside
    ``TimmWrapperForImageClassification`` (``"wrapped"``), with SDPA in every attention block (timm's Swin leaves it
    off by default; the score must not depend on it)."""
    import timm
    from transformers import TimmWrapperConfig

    if kind == "raw":
        model = timm.create_model(architecture, pretrained=False, num_classes=num_classes, **model_args)
    else:
        config = TimmWrapperConfig(architecture=architecture, num_labels=num_classes, model_args=model_args)
        model = AutoModelForImageClassification.from_config(config)
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = True
    return model
