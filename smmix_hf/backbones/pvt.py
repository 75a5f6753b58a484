"""PVT (transformers ``model_type: pvt``): a pyramid of stages; only the last one carries a class token. It has a
file of its own because its spatial-reduction attention is written by hand, not on the attention interface.

The score comes from the last block of the last stage (7×7 grid plus a class token at 224 px), whose
keys are not spatially reduced (``sequence_reduction_ratios[-1] == 1`` in every released PVT), so its
attention is token to token.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from torch import nn

from smmix_hf.backbones.base import QueryKeyBackbone, patch_grid, register_backbone, require_classifier

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["PvtBackbone"]

# PVT depths per size (widths 64-128-320-512).
PVT_DEPTHS = {"tiny": [2, 2, 2, 2], "small": [3, 4, 6, 3]}


@register_backbone
class PvtBackbone(QueryKeyBackbone):
    """PVT: one class token in the last stage; the score is that stage's last block."""

    name = "pvt"
    num_prefix_tokens = 1
    short_names: ClassVar[dict[str, str]] = {f"pvt-{size}": f"Zetatech/pvt-{size}-224" for size in PVT_DEPTHS}

    def __init__(self, model: PreTrainedModel) -> None:
        require_classifier(model, "PvtForImageClassification")
        super().__init__(model)
        if self.config.sequence_reduction_ratios[-1] != 1:
            raise ValueError(
                "SMMix reads token-to-token attention from PVT's last stage, but its keys are reduced by "
                f"sequence_reduction_ratios[-1]={self.config.sequence_reduction_ratios[-1]}; use a ratio of 1."
            )

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        return config.model_type == "pvt"

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig:
        """Two stages with total stride 8 on 32 px: a 4×4 grid plus a class token in the last stage, 10 classes."""
        from transformers import PvtConfig

        shape = dict(
            image_size=32, num_encoder_blocks=2, depths=[1, 1], sequence_reduction_ratios=[2, 1],
            hidden_sizes=[16, 32], patch_sizes=[4, 2], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
        )  # fmt: skip
        return PvtConfig(**{**shape, "num_labels": 10, **overrides})

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        from transformers import PvtConfig

        for size, depths in PVT_DEPTHS.items():
            if hub_id == f"Zetatech/pvt-{size}-224":
                return PvtConfig(depths=depths, hidden_sizes=[64, 128, 320, 512], drop_path_rate=0.1)
        return None

    def final_norm(self) -> nn.Module:
        return self.backbone.encoder.layer_norm

    def classifier(self) -> nn.Module:
        return self.model.classifier

    def last_attention(self) -> nn.Module:
        return self.backbone.encoder.block[-1][-1].attention.self

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        attention = self.last_attention()
        return attention.query, attention.key

    def head_dim_and_scale(self) -> tuple[int, float]:
        head_dim = self.last_attention().attention_head_size
        return head_dim, head_dim**-0.5

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        stride = math.prod(self.config.strides)
        return patch_grid(image_size, (stride, stride), "PVT's total stride")
