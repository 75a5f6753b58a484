"""timm PVT-v2 (b0-b5 of the paper's Tab. 1), raw or inside ``TimmWrapperForImageClassification``. It has a file of
its own because its attention reduces the keys spatially (``q`` and ``kv`` apart, ``sr_ratios``) in a pyramid of
stages, which the generic path (one ``[T, T]`` matrix over a flat grid) cannot read.

PVT-v2 has no class token; its head averages the last stage's tokens, so the SMMix grid is that stage's
grid (7×7 at 224 px, each token covering 32 pixels), and the score comes from the last block of the last
stage. That block's attention is token to token only when its keys are not spatially reduced:
``sr_ratios[-1] == 1`` (true in every released PVT-v2) and no linear attention (``pvt_v2_b2_li`` pools
keys to 7×7 in every stage, so it is rejected). timm computes queries with ``q`` and keys and values with
one fused ``kv`` projection; the probe keeps both outputs and the key is the first half of ``kv``'s
features. The model keeps its fused SDPA kernel. The region pooling reads the last stage's ``norm``
output ``[B, N, C]``. This module does not import timm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from smmix_hf.backbones.base import QueryKeyBackbone, TimmBackbone, patch_grid, register_backbone

if TYPE_CHECKING:
    pass

__all__ = ["PvtV2Backbone"]


@register_backbone
class PvtV2Backbone(TimmBackbone, QueryKeyBackbone):
    """timm PVT-v2: no prefix token; the score is the last stage's last block (query and fused key-value)."""

    name = "pvt_v2"
    architecture_prefix = "pvt_v2_"
    timm_classes = ("PyramidVisionTransformerV2",)
    num_prefix_tokens = 0
    short_names: ClassVar[dict[str, str]] = {f"pvt-v2-b{size}": f"timm/pvt_v2_b{size}.in1k" for size in range(6)}

    tiny_architecture = "pvt_v2_b0"
    # Two stages (total stride 8 on 32 px: a 4×4 grid, the last one token to token).
    tiny_model_args: ClassVar[dict[str, object]] = dict(
        depths=(1, 1), embed_dims=(16, 32), num_heads=(1, 2), sr_ratios=(2, 1), mlp_ratios=(2, 2)
    )

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        attention = self.last_attention()
        if attention.sr is not None or attention.pool is not None:
            reason = "linear attention pools them to 7x7" if attention.pool is not None else "sr_ratios[-1] > 1"
            raise ValueError(
                f"SMMix reads token-to-token attention from PVT-v2's last stage, but its keys are reduced "
                f"({reason}); build the model with sr_ratios[-1] == 1 and linear=False."
            )

    def last_stage(self) -> nn.Module:
        return self.backbone.stages[-1]

    def final_norm(self) -> nn.Module:
        return self.last_stage().norm

    def last_attention(self) -> nn.Module:
        return self.last_stage().blocks[-1].attn

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        attention = self.last_attention()
        return attention.q, attention.kv

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        query, key_value = captures
        return self.score_grid(query, key_value[..., : query.shape[-1]], image_size)

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.last_attention()
        return attention.head_dim, attention.scale

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        stride = 4 * 2 ** (len(self.backbone.stages) - 1)
        return patch_grid(image_size, (stride, stride), "PVT-v2's total stride")
