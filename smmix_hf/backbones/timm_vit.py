"""timm's distilled DeiT (``VisionTransformerDistilled``), raw or inside ``TimmWrapperForImageClassification``.

This file exists because the distilled DeiT has two heads, which the generic path
(:mod:`smmix_hf.backbones.timm_attention`: one pooled feature → ``fc_norm`` → ``head``) cannot serve. Its score
(Eq. 6) is read as the generic path reads it (the last block's softmax at ``attn_drop``), with two prefix tokens
(class and distillation). Every other timm ViT, DeiT-T/S/B of the paper's Tab. 1 included, is read by
:class:`~smmix_hf.backbones.timm_attention.TimmAttentionBackbone` (still importable here as ``TimmViTBackbone``).

Regions. The model predicts ``(head(head_drop(cls)) + head_dist(head_drop(dist))) / 2`` (with
``distilled_training`` off, as SMMix trains it). A region feature takes the place of both tokens: its logits are
``(head(head_drop(r)) + head_dist(head_drop(r))) / 2``, so L_fine (Eq. 12-13) trains both heads as L_cls does. The
probe appends the region features at ``head_drop``'s input, which the model calls once per token, and splits the
region rows off the model's own averaged output (the "classifier" of this family is the timm model itself). Two
consequences: ``region_head=separate`` is refused (there is no single linear classifier to copy), and so is
``distilled_training`` (the model would return two predictions).

This module does not import timm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from torch import nn

from smmix_hf.backbones.base import TimmBackbone, register_backbone
from smmix_hf.backbones.timm_attention import DEIT_SIZES, TimmAttentionBackbone

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["TimmDeiTDistilledBackbone", "TimmViTBackbone"]

TimmViTBackbone = TimmAttentionBackbone  # the name of the plain ViT family before the generic path read every ViT


@register_backbone
class TimmDeiTDistilledBackbone(TimmAttentionBackbone):
    """timm ``VisionTransformerDistilled``: class and distillation tokens; region logits average both heads."""

    name = "timm_deit_distilled"
    architecture_prefix = "deit_"
    timm_classes = ("VisionTransformerDistilled",)
    num_prefix_tokens = 2
    fallback = False
    short_names: ClassVar[dict[str, str]] = {
        f"timm-deit-{size}-distilled": f"timm/deit_{size}_distilled_patch16_224.fb_in1k" for size in DEIT_SIZES
    }

    tiny_architecture = "deit_tiny_distilled_patch16_224"
    # Two blocks, width 32, patch 8 on 32 px (a 4×4 grid).
    tiny_model_args: ClassVar[dict[str, object]] = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        if getattr(self.backbone, "distilled_training", False):
            raise ValueError(
                "SMMix trains a distilled DeiT on its averaged prediction; this model has distilled_training on "
                "(it returns the class and distillation heads' logits apart): call set_distilled_training(False)."
            )

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        return TimmBackbone.matches.__func__(cls, config) and "distilled" in config.architecture

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        return TimmBackbone.scratch_config.__func__(cls, hub_id)

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
