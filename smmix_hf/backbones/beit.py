"""BEiT (transformers ``model_type: beit``): a class token, a relative position bias, a mean-pooled head. It has a
file of its own because its pooler normalises the pooled feature before the classifier, a step the generic reader
(which feeds the classifier) would skip.

The score is the last layer's attention, ``softmax(q·kᵀ·scale + bias)``, where the bias is that layer's
relative position bias plus the model's shared one (whichever the configuration enables), formed by the
model's own bias modules for the token grid of the input. BEiT's attention puts the bias in as an
attention mask; the model keeps its SDPA kernel and the probe recomputes only the last layer's matrix.

With ``use_mean_pooling`` (the image-classification checkpoints) the final norm is an identity and the
pooler averages the patch tokens and normalises them with its own layer norm before the classifier. The
region means of Eq. 10-11 take the same path: they are pooled from the final sequence (class token
dropped) and enter the head at the pooler's norm, so a region's logits are
``classifier(pooler_norm(mean of its tokens))``. Without mean pooling the head reads the normed class
token and the region means go straight to the classifier, as for ViT.

No short names yet: a short name needs a fixture of the Hub checkpoint it resolves to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from smmix_hf.backbones.base import QueryKeyBackbone, patch_grid, register_backbone, require_classifier

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["BeitBackbone"]


@register_backbone
class BeitBackbone(QueryKeyBackbone):
    """BEiT: one class token; the relative position bias joins the last layer's attention logits."""

    name = "beit"
    num_prefix_tokens = 1

    def __init__(self, model: PreTrainedModel) -> None:
        require_classifier(model, "BeitForImageClassification")
        super().__init__(model)

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        return config.model_type == "beit"

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig:
        """The ViT tiny shape with a relative position bias in every layer, layer scale and a mean-pooled head;
        no dropout or drop path."""
        from transformers import BeitConfig

        from smmix_hf.backbones.vit import TINY_SHAPE

        shape = dict(
            use_relative_position_bias=True, use_mean_pooling=True, layer_scale_init_value=0.1, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, drop_path_rate=0.0,
        )  # fmt: skip
        return BeitConfig(**{**TINY_SHAPE, **shape, **overrides})

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        return None

    def final_norm(self) -> nn.Module:
        return self.backbone.layernorm

    def classifier(self) -> nn.Module:
        return self.model.classifier

    def head_input(self) -> nn.Module:
        pooler_norm = getattr(self.backbone.pooler, "layernorm", None)
        return pooler_norm if pooler_norm is not None else self.classifier()

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        attention = self.backbone.layers[-1].attention
        return attention.q_proj, attention.k_proj

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.backbone.layers[-1].attention
        return attention.head_dim, attention.scaling

    def attention_bias(self, image_size: tuple[int, int]) -> torch.Tensor | None:
        grid = self.token_grid(image_size)
        biases = [self.backbone.layers[-1].relative_position_bias, self.backbone.shared_position_bias]
        terms = [bias(grid) for bias in biases if bias is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        patch = self.config.patch_size
        return patch_grid(image_size, (patch, patch), "the patch size")
