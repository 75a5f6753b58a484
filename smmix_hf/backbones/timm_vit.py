"""timm ViT and DeiT (``VisionTransformer``: DeiT-T/S/B of the paper's Tab. 1, ``vit_*``, ``deit3_*``) and the
distilled DeiT (``VisionTransformerDistilled``), raw or inside ``TimmWrapperForImageClassification``.

Score (Eq. 6). timm's ``Attention`` computes queries, keys and values with one fused ``qkv`` projection,
normalises queries and keys per head (``q_norm`` / ``k_norm``, identities unless ``qk_norm``) and, with
``fused_attn``, never forms the attention matrix (SDPA). The probe keeps ``blocks[-1].attn.qkv``'s output during
the no-grad motivated forward; the score recomputes ``softmax(q_norm(q)·k_norm(k)ᵀ·scale)`` from it, so the model
keeps its SDPA kernel. Prefix tokens are the model's ``num_prefix_tokens``: class, distillation and register
tokens alike; only patch tokens are image tokens.

Regions (Eq. 10-11). The final norm (``norm``; an identity when ``global_pool='avg'``, where ``fc_norm`` takes
its place) gives ``[B, T, D]``; the prefix tokens are dropped and the patch tokens are mean-pooled inside and
outside the pasted window. The pooled features then go through what the model applies to its own pooled feature:
``fc_norm`` → ``head_drop`` → ``head``.

Distilled DeiT. The model predicts ``(head(head_drop(cls)) + head_dist(head_drop(dist))) / 2`` (with
``distilled_training`` off, as SMMix trains it). A region feature takes the place of both tokens: its logits are
``(head(head_drop(r)) + head_dist(head_drop(r))) / 2``, so L_fine trains both heads as L_cls does. The probe
appends the region features at ``head_drop``'s input, which the model calls once per token, and splits the region
rows off the model's own averaged output (the "classifier" of this family is the timm model itself). Two
consequences: ``region_head=separate`` is refused (there is no single linear classifier to copy), and so is
``distilled_training`` (the model would return two predictions).

| timm class                 | prefix tokens              | grid at 224 px | pooled feature → logits           |
|----------------------------|----------------------------|----------------|-----------------------------------|
| VisionTransformer          | ``num_prefix_tokens`` (1)  | 14×14 (P=16)   | fc_norm → head_drop → head         |
| VisionTransformerDistilled | 2 (class, distillation)    | 14×14 (P=16)   | mean of head and head_dist         |

This module does not import timm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from smmix_hf.backbones.base import QueryKeyBackbone, TimmBackbone, patch_grid, register_backbone
from smmix_hf.tokens import image_attention_score

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["TimmDeiTDistilledBackbone", "TimmViTBackbone"]

DEIT_SIZES = ("tiny", "small", "base")
POOLS = ("token", "avg")


@register_backbone
class TimmViTBackbone(TimmBackbone, QueryKeyBackbone):
    """timm ``VisionTransformer``: the score from the last block's fused ``qkv``; class token or mean pooling."""

    name = "timm_vit"
    architecture_prefix = ("vit_", "deit_", "deit3_")
    timm_classes = ("VisionTransformer",)
    num_prefix_tokens = 1  # the class default; an instance reads the model's own count
    distilled: ClassVar[bool] = False  # architecture names of the distilled models contain "distilled"
    short_names: ClassVar[dict[str, str]] = {
        f"timm-deit-{size}": f"timm/deit_{size}_patch16_224.fb_in1k" for size in DEIT_SIZES
    }

    tiny_architecture = "deit_tiny_patch16_224"
    # Two blocks, width 32, patch 8 on 32 px (a 4×4 grid).
    tiny_model_args: ClassVar[dict[str, object]] = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        module = self.backbone
        self.num_prefix_tokens = int(module.num_prefix_tokens)
        self.last_attention()
        pool = getattr(module, "global_pool", None)
        if getattr(module, "attn_pool", None) is not None or pool not in POOLS:
            raise ValueError(
                f"SMMix pools region tokens as the model pools its own (class token or mean), but this "
                f"{type(module).__name__} has global_pool={pool!r}; build it with global_pool='token' or 'avg'."
            )

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        return super().matches(config) and ("distilled" in config.architecture) == cls.distilled

    @classmethod
    def timm_model_args_for_image_size(cls, size: int) -> dict[str, object]:
        """The position embedding is built for ``img_size``, so an input size override sets it too."""
        return {"img_size": size}

    # ---- what the probe reads ----

    def final_norm(self) -> nn.Module:
        return self.backbone.norm

    def head_input(self) -> nn.Module:
        return self.backbone.fc_norm

    def last_attention(self) -> nn.Module:
        attention = self.backbone.blocks[-1].attn
        if type(attention).__name__ != "Attention" or not isinstance(getattr(attention, "qkv", None), nn.Linear):
            raise ValueError(
                f"SMMix reads timm's Attention (fused qkv, softmax(q·kᵀ·scale)) in the last block, but this model's is "
                f"{type(attention).__name__}; build the model with the default attn_layer."
            )
        return attention

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        """Queries and keys both come out of the fused ``qkv``: the probe keeps its output twice."""
        qkv = self.last_attention().qkv
        return qkv, qkv

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.last_attention()
        return attention.head_dim, attention.scale

    def attention_probabilities(
        self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """``softmax(q_norm(q)·k_norm(k)ᵀ·scale)`` ``[B, heads, T, T]`` from ``qkv`` outputs ``[B, T, 3·heads·d]``
        (``query`` and ``key`` are the same output; the queries are its first third, the keys its second)."""
        attention = self.last_attention()
        head_dim, scale = self.head_dim_and_scale()

        def heads(states: torch.Tensor, index: int) -> torch.Tensor:
            batch, tokens, _ = states.shape
            return states.reshape(batch, tokens, 3, -1, head_dim)[:, :, index].transpose(1, 2)

        query, key = attention.q_norm(heads(query, 0)), attention.k_norm(heads(key, 1))
        logits = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
        return logits.softmax(dim=-1)

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        query, key = captures
        grid = self.token_grid(image_size)
        scores = image_attention_score(self.attention_probabilities(query, key, image_size), self.num_prefix_tokens)
        return scores.view(scores.shape[0], *grid)

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        return patch_grid(image_size, tuple(self.backbone.patch_embed.patch_size), "the patch size")


@register_backbone
class TimmDeiTDistilledBackbone(TimmViTBackbone):
    """timm ``VisionTransformerDistilled``: class and distillation tokens; region logits average both heads."""

    name = "timm_deit_distilled"
    architecture_prefix = "deit_"
    timm_classes = ("VisionTransformerDistilled",)
    num_prefix_tokens = 2
    distilled = True
    short_names: ClassVar[dict[str, str]] = {
        f"timm-deit-{size}-distilled": f"timm/deit_{size}_distilled_patch16_224.fb_in1k" for size in DEIT_SIZES
    }

    tiny_architecture = "deit_tiny_distilled_patch16_224"  # the tiny ViT shape, with a distillation token

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        if getattr(self.backbone, "distilled_training", False):
            raise ValueError(
                "SMMix trains a distilled DeiT on its averaged prediction; this model has distilled_training on "
                "(it returns the class and distillation heads' logits apart): call set_distilled_training(False)."
            )

    def require_linear_head(self) -> None:
        module = self.backbone
        if not (isinstance(module.head, nn.Linear) and isinstance(module.head_dist, nn.Linear)):
            raise ValueError(
                f"{type(self.model).__name__} is a timm distilled DeiT without its two classifier heads; create it "
                "with num_classes > 0."
            )

    def head_input(self) -> nn.Module:
        """``head_drop``: the model calls it on the class token, then on the distillation token; the probe appends
        the region features to both calls, so both heads see them."""
        return self.backbone.head_drop

    def classifier(self) -> nn.Module:
        """The timm model itself: its output ``(head + head_dist) / 2`` carries the averaged region logits."""
        return self.backbone
