"""Backbone families: one module each, registered with :func:`register_backbone` on :class:`Backbone`.

Importing this package registers every family below and imports neither timm nor any model class; the
timm families read timm models raw (``timm.create_model``) or inside ``TimmWrapperForImageClassification``.
To add a family, add one module here and import it below (docs/backbones.md, "Adding a backbone").
"""

# isort: off
# Registration order is the order of the families in messages and in the --model help.
# The generic timm path (timm_attention) is every other timm family's fallback: it defers to those with a file.
from smmix_hf.backbones import vit, swin, pvt, beit, timm_cait, timm_pvt_v2, timm_swin, timm_vit, timm_attention

# The generic transformers reader comes after the hand-wired transformers families: it serves the rest.
from smmix_hf.backbones import transformers_generic

# isort: on
from smmix_hf.backbones.base import (
    Backbone,
    QueryKeyBackbone,
    TimmBackbone,
    backbone_class_for,
    backbone_for,
    register_backbone,
    registered_backbones,
)
from smmix_hf.backbones.names import MODEL_ALIASES, builtin_config, model_name_help, resolve_model_name

__all__ = [
    "MODEL_ALIASES",
    "Backbone",
    "QueryKeyBackbone",
    "TimmBackbone",
    "backbone_class_for",
    "backbone_for",
    "beit",
    "builtin_config",
    "model_name_help",
    "pvt",
    "register_backbone",
    "registered_backbones",
    "resolve_model_name",
    "swin",
    "timm_attention",
    "timm_cait",
    "timm_pvt_v2",
    "timm_swin",
    "timm_vit",
    "transformers_generic",
    "vit",
]
