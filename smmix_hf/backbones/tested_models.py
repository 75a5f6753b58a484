"""The transformers models the tests build from scratch and read through the generic path
(:class:`~smmix_hf.backbones.transformers_generic.TransformersAttentionBackbone`).

Each entry is (label, ``model_type``, configuration arguments): a tiny classifier for 32 px digits (patch 8, a 4×4
grid, width 32, two layers, two heads, 10 labels). Two-tower models (SigLIP, CLIP) take the shape in
``vision_config``. The generic tests and the list of tested models in the docs are made from
:data:`TRANSFORMERS_TESTED`; adding a model is one line. The timm counterpart is
:data:`smmix_hf.backbones.timm_attention.TIMM_TESTED`. This module imports nothing heavy: :func:`tiny_config`
builds a configuration when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["TRANSFORMERS_TESTED", "tiny_config"]

_VISION = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
_TINY = {**_VISION, "num_labels": 10}

TRANSFORMERS_TESTED: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("dinov2", "dinov2", {**_TINY, "mlp_ratio": 2}),
    ("dinov2-registers", "dinov2_with_registers", {**_TINY, "mlp_ratio": 2, "num_register_tokens": 4}),
    ("vit-msn", "vit_msn", {**_TINY, "intermediate_size": 64}),
    ("ijepa", "ijepa", {**_TINY, "intermediate_size": 64}),
    ("siglip", "siglip", {"vision_config": {**_VISION, "intermediate_size": 64}, "num_labels": 10}),
    ("clip", "clip", {"vision_config": {**_VISION, "intermediate_size": 64}, "num_labels": 10}),
)


def tiny_config(label: str, **overrides: object) -> PretrainedConfig:
    """The configuration of :data:`TRANSFORMERS_TESTED`'s entry ``label``, changed by ``overrides`` (for a two-tower
    model they go to ``vision_config``, except ``num_labels``)."""
    from transformers import AutoConfig

    entries = {entry_label: (model_type, arguments) for entry_label, model_type, arguments in TRANSFORMERS_TESTED}
    if label not in entries:
        raise ValueError(f"no tested transformers model {label!r}; known: {', '.join(entries)}.")
    model_type, arguments = entries[label]
    arguments = dict(arguments)
    if "vision_config" in arguments:
        vision = {**arguments["vision_config"], **{k: v for k, v in overrides.items() if k != "num_labels"}}
        arguments["vision_config"] = vision
        overrides = {k: v for k, v in overrides.items() if k == "num_labels"}
    return AutoConfig.for_model(model_type, **{**arguments, **overrides})
