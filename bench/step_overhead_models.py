"""The models ``bench/step_overhead.py`` times, each built from scratch at the shape flags' size.

- ``vit``: transformers' ``ViTForImageClassification``, read by its hand-wired file (or the model of ``--config``);
- ``timm-deit``: timm ``deit_tiny_patch16_224`` inside ``TimmWrapperForImageClassification``, read generically
  (the last block's ``fused_attn`` off for the motivated forward only);
- ``timm-eva02``: timm ``eva02_tiny_patch14_224`` (rotary embeddings, SwiGLU, mean pooling) likewise, patch 14 unless
  ``--patch-size`` says otherwise;
- ``dinov2``: transformers' ``Dinov2ForImageClassification``, read generically through the attention interface.

Every model has no dropout and no drop path, and attends with SDPA in every block (timm's ``fused_attn``,
transformers' ``--attn-implementation``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn

MODELS = ("vit", "timm-deit", "timm-eva02", "dinov2")
TIMM_ARCHITECTURES = {"timm-deit": "deit_tiny_patch16_224", "timm-eva02": "eva02_tiny_patch14_224"}
DEFAULT_PATCH = {"timm-eva02": 14}  # the others: 16, as DeiT-T


@dataclass
class BenchModel:
    """One model of the run and what its header line says about it."""

    name: str
    model: nn.Module
    description: str
    image_size: int
    num_labels: int


def build_bench_model(name: str, args: argparse.Namespace) -> BenchModel:
    """The model ``name`` on ``args.device``, seeded, at the shape of the flags (``--config`` for ``vit``)."""
    if name not in MODELS:
        raise SystemExit(f"--models takes {', '.join(MODELS)}; got {name!r}")
    torch.manual_seed(0)
    if name == "vit" and args.config is not None:
        return _from_config(args)
    patch = args.patch_size or DEFAULT_PATCH.get(name, 16)
    shape = (
        f"width {args.hidden_size}, {args.layers} layers, {args.heads} heads, {args.image_size}px/patch {patch}, "
        f"{args.num_labels} classes"
    )
    if name in TIMM_ARCHITECTURES:
        model = _timm(TIMM_ARCHITECTURES[name], args, patch)
        description = f"timm {TIMM_ARCHITECTURES[name]} (generic) {shape} | fused_attn"
    else:
        model = _vit(args, patch) if name == "vit" else _dinov2(args, patch)
        kind = "ViT (hand-wired)" if name == "vit" else "Dinov2 (generic)"
        description = f"{kind} {shape} | attention {args.attn_implementation}"
    return BenchModel(name, model.to(args.device), description, args.image_size, args.num_labels)


def _vit(args: argparse.Namespace, patch: int) -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=args.image_size,
        patch_size=patch,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.hidden_size,
        num_labels=args.num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    config._attn_implementation = args.attn_implementation
    return ViTForImageClassification(config)


def _dinov2(args: argparse.Namespace, patch: int) -> nn.Module:
    from transformers import Dinov2Config, Dinov2ForImageClassification

    config = Dinov2Config(
        image_size=args.image_size,
        patch_size=patch,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        mlp_ratio=4,
        num_labels=args.num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        drop_path_rate=0.0,
    )
    config._attn_implementation = args.attn_implementation
    return Dinov2ForImageClassification(config)


def _timm(architecture: str, args: argparse.Namespace, patch: int) -> nn.Module:
    from transformers import AutoModelForImageClassification, TimmWrapperConfig

    model_args = dict(
        img_size=args.image_size,
        patch_size=patch,
        embed_dim=args.hidden_size,
        depth=args.layers,
        num_heads=args.heads,
        drop_rate=0.0,
        drop_path_rate=0.0,
    )
    config = TimmWrapperConfig(architecture=architecture, num_labels=args.num_labels, model_args=model_args)
    model = AutoModelForImageClassification.from_config(config)
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = True
    return model


def _from_config(args: argparse.Namespace) -> BenchModel:
    """The model of a checkpoint folder's config.json (the ``vit`` row), no dropout."""
    from transformers import AutoConfig, AutoModelForImageClassification

    config = AutoConfig.from_pretrained(args.config)
    needed = ("hidden_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size")
    if not all(isinstance(getattr(config, name, None), int) for name in needed):
        raise SystemExit(f"--config needs a ViT-shaped config.json ({', '.join(needed)}): {args.config}")
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
        if hasattr(config, name):
            setattr(config, name, 0.0)
    config._attn_implementation = args.attn_implementation
    description = (
        f"{args.config} width {config.hidden_size}, {config.num_hidden_layers} layers, "
        f"{config.num_attention_heads} heads, {config.image_size}px/patch {config.patch_size}, "
        f"{config.num_labels} classes | attention {args.attn_implementation}"
    )
    model = AutoModelForImageClassification.from_config(config).to(args.device)
    return BenchModel("vit", model, description, config.image_size, config.num_labels)
