"""Tiny ViT, DeiT, Swin, PVT and BEiT classifiers built from configs (no network), sized for 32 px digits."""

from __future__ import annotations

from transformers import (
    BeitConfig,
    BeitForImageClassification,
    DeiTConfig,
    DeiTForImageClassification,
    PreTrainedModel,
    PvtConfig,
    PvtForImageClassification,
    SwinConfig,
    SwinForImageClassification,
    ViTConfig,
    ViTForImageClassification,
)

VIT_SHAPE = dict(
    image_size=32,
    patch_size=8,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    num_labels=10,
)


def tiny_vit(**overrides) -> PreTrainedModel:
    return ViTForImageClassification(ViTConfig(**{**VIT_SHAPE, **overrides}))


def tiny_deit(**overrides) -> PreTrainedModel:
    return DeiTForImageClassification(DeiTConfig(**{**VIT_SHAPE, **overrides}))


def tiny_swin(window_size: int = 4, **overrides) -> PreTrainedModel:
    """Two stages; the last one is 8×8 tokens, so window 4 gives four (shifted) windows, 8 gives one."""
    config = SwinConfig(
        image_size=32,
        patch_size=2,
        embed_dim=16,
        depths=[1, 2],
        num_heads=[2, 2],
        window_size=window_size,
        num_labels=10,
        **overrides,
    )
    return SwinForImageClassification(config)


def tiny_pvt(**overrides) -> PreTrainedModel:
    """Two stages with total stride 8: a 4×4 grid plus a class token in the last stage."""
    config = PvtConfig(
        image_size=32,
        num_encoder_blocks=2,
        depths=[1, 1],
        sequence_reduction_ratios=[2, 1],
        hidden_sizes=[16, 32],
        patch_sizes=[4, 2],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        num_labels=10,
        **overrides,
    )
    return PvtForImageClassification(config)


def tiny_beit(**overrides) -> PreTrainedModel:
    """ViT shape with BEiT's relative position bias in every layer, layer scale and a mean-pooled head."""
    config = BeitConfig(
        **{
            **VIT_SHAPE,
            "use_relative_position_bias": True,
            "use_mean_pooling": True,
            "layer_scale_init_value": 0.1,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "drop_path_rate": 0.0,
            **overrides,
        }
    )
    return BeitForImageClassification(config)


TINY_MODELS = {"vit": tiny_vit, "deit": tiny_deit, "swin": tiny_swin, "pvt": tiny_pvt, "beit": tiny_beit}
