"""ViT and DeiT (transformers ``model_type: vit`` and ``deit``): a class token (DeiT distilled: class and
distillation tokens) in front of the patch tokens; the score is the last encoder layer's attention. They have a file
of their own because TransMix reads the class token's attention in the mixed forward from the last layer's query
and key projections, which the generic reader (motivated forward only) does not form.

The ``facebook/deit-*-patch16-224`` checkpoints are ViT-format (``model_type: vit``, one prefix token);
the ``-distilled-`` ones are ``model_type: deit`` (two prefix tokens) and name the inference-only
``DeiTForImageClassificationWithTeacher``, so training builds ``DeiTForImageClassification``.

| model_type | attention read      | grid at 224 px | prefix tokens |
|------------|---------------------|----------------|---------------|
| vit        | last encoder layer  | 14×14 (P=16)   | 1 (class)     |
| deit       | last encoder layer  | 14×14 (P=16)   | 2 (class, distillation) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from torch import nn

from smmix_hf.backbones.base import QueryKeyBackbone, patch_grid, register_backbone, require_classifier

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["DeiTBackbone", "ViTBackbone"]

# DeiT sizes of the paper's Tab. 1: width, heads (12 layers, patch 16, 224 px).
DEIT_SHAPES = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
# The family's tiny configuration (tests and smoke runs on 32 px digits).
TINY_SHAPE = dict(
    image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    num_labels=10,
)  # fmt: skip


class _ViTLayout(QueryKeyBackbone):
    """The transformers ViT module layout shared by ``vit`` and ``deit``."""

    classifier_class: ClassVar[str]

    def __init__(self, model: PreTrainedModel) -> None:
        require_classifier(model, self.classifier_class)
        super().__init__(model)

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        return config.model_type == cls.name

    def final_norm(self) -> nn.Module:
        return self.backbone.layernorm

    def classifier(self) -> nn.Module:
        return self.model.classifier

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        attention = self.backbone.layers[-1].attention
        return attention.q_proj, attention.k_proj

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.backbone.layers[-1].attention
        return attention.head_dim, attention.scaling

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        patch = self.config.patch_size
        return patch_grid(image_size, (patch, patch), "the patch size")

    @staticmethod
    def _deit_config(config_class: type[PretrainedConfig], width: int, heads: int) -> PretrainedConfig:
        return config_class(
            hidden_size=width,
            num_hidden_layers=12,
            num_attention_heads=heads,
            intermediate_size=4 * width,
            image_size=224,
            patch_size=16,
            qkv_bias=True,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )


@register_backbone
class ViTBackbone(_ViTLayout):
    """``model_type: vit``: Google's ViT and the ViT-format DeiT checkpoints; one class token."""

    name = "vit"
    num_prefix_tokens = 1
    classifier_class = "ViTForImageClassification"
    short_names: ClassVar[dict[str, str]] = {
        **{f"deit-{size}": f"facebook/deit-{size}-patch16-224" for size in DEIT_SHAPES},
        **{f"facebook/deit-{size}": f"facebook/deit-{size}-patch16-224" for size in DEIT_SHAPES},
        "vit-base": "google/vit-base-patch16-224",
    }

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig:
        """Two layers, width 32, patch 8 on 32 px (a 4×4 grid), 10 classes: a configuration for tests."""
        from transformers import ViTConfig

        return ViTConfig(**{**TINY_SHAPE, **overrides})

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        from transformers import ViTConfig

        if hub_id == "google/vit-base-patch16-224":
            return ViTConfig()
        for size, (width, heads) in DEIT_SHAPES.items():
            if hub_id == f"facebook/deit-{size}-patch16-224":
                return cls._deit_config(ViTConfig, width, heads)
        return None


@register_backbone
class DeiTBackbone(_ViTLayout):
    """``model_type: deit`` (the distilled checkpoints): class and distillation tokens lead."""

    name = "deit"
    num_prefix_tokens = 2
    classifier_class = "DeiTForImageClassification"
    short_names: ClassVar[dict[str, str]] = {
        f"deit-{size}-distilled": f"facebook/deit-{size}-distilled-patch16-224" for size in DEIT_SHAPES
    }

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig:
        """Two layers, width 32, patch 8 on 32 px (a 4×4 grid), 10 classes: a configuration for tests."""
        from transformers import DeiTConfig

        return DeiTConfig(**{**TINY_SHAPE, **overrides})

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        from transformers import DeiTConfig

        for size, (width, heads) in DEIT_SHAPES.items():
            if hub_id == f"facebook/deit-{size}-distilled-patch16-224":
                return cls._deit_config(DeiTConfig, width, heads)
        return None

    @classmethod
    def prepare_config(cls, config: PretrainedConfig) -> None:
        """Train ``DeiTForImageClassification``: the checkpoints name the two-head class that takes no labels."""
        config.architectures = ["DeiTForImageClassification"]
