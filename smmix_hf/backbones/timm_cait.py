"""timm CaiT (CaiT-XXS-24/36 of the paper's Tab. 1), raw or inside ``TimmWrapperForImageClassification``. It has a
file of its own because its last blocks are class attention (talking heads, a class token that joins late): the
generic path would read the class-attention block instead of the last self-attention over the patches.

CaiT runs ``depth`` self-attention blocks over the patch tokens only, then two class-attention blocks
in which a class token attends to the frozen patch tokens. Eq. 6 asks for the attention the image
tokens receive from the image tokens; only the self-attention blocks have it, so the score is read
from ``blocks[-1]``. Its attention is talking-heads attention: the logits ``q·kᵀ·scale`` are mixed
across heads by ``proj_l`` before the softmax, and the probabilities are mixed again by ``proj_w``
after it. The probe keeps ``proj_l``'s output and the score uses its softmax, the row-stochastic
attention of each head (``proj_w`` only re-weights the heads). CaiT never fuses this attention, so the
matrix already exists in its forward and nothing is recomputed.

The final norm's output is ``[class token, patch tokens]`` (the class-attention stage prepends the
class token), so one prefix token is dropped before the region pooling of Eq. 10-11, and the pooled
patch tokens go through timm's own ``head``. This module does not import timm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from smmix_hf.backbones.base import TimmBackbone, patch_grid, register_backbone
from smmix_hf.tokens import image_attention_score

if TYPE_CHECKING:
    pass

__all__ = ["CaitBackbone"]


@register_backbone
class CaitBackbone(TimmBackbone):
    """timm CaiT: the score comes from the last *self-attention* block's talking-heads logits."""

    name = "cait"
    architecture_prefix = "cait_"
    timm_classes = ("Cait",)
    num_prefix_tokens = 1
    short_names: ClassVar[dict[str, str]] = {
        "cait-xxs24": "timm/cait_xxs24_224.fb_dist_in1k",
        "cait-xxs36": "timm/cait_xxs36_224.fb_dist_in1k",
    }

    tiny_architecture = "cait_xxs24_224"
    # Two self-attention blocks and one class-attention block, patch 8 on 32 px (a 4×4 grid).
    tiny_model_args: ClassVar[dict[str, object]] = dict(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, depth_token_only=1
    )

    @classmethod
    def timm_model_args_for_image_size(cls, size: int) -> dict[str, object]:
        """CaiT's position embedding is built for ``img_size``, so an input size override sets it too."""
        return {"img_size": size}

    def final_norm(self) -> nn.Module:
        return self.backbone.norm

    def last_attention(self) -> nn.Module:
        attention = self.backbone.blocks[-1].attn
        if not isinstance(getattr(attention, "proj_l", None), nn.Linear):
            raise ValueError(
                f"SMMix reads CaiT's talking-heads attention (proj_l), but the last block's attention is "
                f"{type(attention).__name__}; build the model with timm's default attn_block."
            )
        return attention

    def attention_capture_modules(self) -> tuple[nn.Module, ...]:
        return (self.last_attention().proj_l,)

    @staticmethod
    def attention_probabilities_from_logits(mixed_logits: torch.Tensor) -> torch.Tensor:
        """Softmax attention ``[B, heads, N, N]`` from ``proj_l``'s output ``[B, N, N, heads]``."""
        return mixed_logits.float().permute(0, 3, 1, 2).softmax(dim=-1)

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        (mixed_logits,) = captures
        grid = self.token_grid(image_size)
        scores = image_attention_score(self.attention_probabilities_from_logits(mixed_logits), 0)
        return scores.view(scores.shape[0], *grid)

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        return patch_grid(image_size, tuple(self.backbone.patch_embed.patch_size), "CaiT's patch size")
