"""Any timm vision transformer whose last block's attention follows timm's ``Attention`` pattern, read without a
file of its own: ViT (class token, mean pooling, register tokens), DeiT, DeiT III, EVA and EVA-02 (rotary), BEiT,
ViTamin (:data:`TIMM_TESTED` lists the ones the tests build), raw or inside
``TimmWrapperForImageClassification``.

The generic handle is what timm's transformers share:

- **Attention (Eq. 6).** timm's ``Attention``, EVA's ``EvaAttention`` (rotary embeddings included) and BEiT's
  ``Attention`` form ``softmax(q·kᵀ·scale + bias)`` and pass it through ``attn_drop`` only when the module's
  ``fused_attn`` flag is off; otherwise they call SDPA and the matrix never exists. During the motivated forward
  only (:meth:`TimmAttentionBackbone.motivated_forward_context`), the last block's flag is switched off and the
  probe keeps ``attn_drop``'s output: in eval mode that is the softmax probabilities ``[B, heads, T, T]`` with
  whatever the model adds to its logits (``q_norm`` / ``k_norm``, rotary embeddings, relative position bias).
  Every other block, and every training forward, keeps the fused kernel. This is how
  ``timm.utils.AttentionExtract`` reads attention, restricted to one block.
- **Prefix tokens.** The model's own ``num_prefix_tokens``: class, distillation and register tokens alike; the
  rest of the sequence is the image tokens.
- **Token grid.** ``patch_embed.grid_size`` for the size the model was built for, ``patch_embed.dynamic_feat_size``
  under ``dynamic_img_size``, and the token count minus the prefix tokens must agree with it. It never comes from
  ``patch_size`` alone: ViTamin's convolutional stem reports ``patch_size=(1, 1)`` with a total stride of 16.
- **Regions (Eq. 10-13).** ``norm`` gives the final sequence ``[B, T, D]`` (an identity in EVA, BEiT and
  mean-pooled ViTs, which normalise the pooled feature in ``fc_norm`` instead). The region means of the image
  tokens are appended at ``fc_norm``'s input, so they go ``fc_norm`` → ``head_drop`` → ``head`` as the model's own
  pooled feature does: the class token for ``global_pool='token'``, the mean of the image tokens for ``'avg'``.
  A head that pools by attention (``'map'``) or by maximum has no region mean and is refused.

The families with their own file are those this path cannot serve: Swin (windows), CaiT (class attention after
the self-attention blocks), PVT-v2 (spatial reduction) and the distilled DeiT (two heads). They are matched
first; this class is the fallback for every other timm model that has the pattern. This module does not import
timm.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from smmix_hf.backbones.base import (
    QueryKeyBackbone,
    TimmBackbone,
    register_backbone,
    registered_backbones,
    timm_module_of,
)
from smmix_hf.tokens import image_attention_score

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["TIMM_TESTED", "TimmAttentionBackbone"]

POOLS = ("token", "avg")
DEIT_SIZES = ("tiny", "small", "base")

# The timm models the tests build from scratch, tiny (32 px, two blocks; ViTamin's convolutional stem needs
# 64 px for a 4×4 grid): (label, timm architecture, ``timm.create_model`` arguments). The generic tests and the
# list of tested models in the docs are made from it; adding a model is one line.
_TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
TIMM_TESTED: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("vit", "vit_tiny_patch16_224", {**_TINY, "qk_norm": True}),
    ("vit-avg", "vit_tiny_patch16_224", {**_TINY, "class_token": False, "global_pool": "avg"}),
    ("vit-reg4-dinov2", "vit_small_patch14_reg4_dinov2", _TINY),
    ("deit", "deit_tiny_patch16_224", _TINY),
    ("deit3", "deit3_small_patch16_224", _TINY),
    ("eva02", "eva02_tiny_patch14_224", _TINY),
    ("eva", "eva_giant_patch14_224", {**_TINY, "mlp_ratio": 2.0}),
    ("beit", "beit_base_patch16_224", _TINY),
    ("vitamin", "vitamin_small_224", {"img_size": 64, "depth": 2, "num_heads": 2}),
)


@register_backbone
class TimmAttentionBackbone(TimmBackbone, QueryKeyBackbone):
    """Any timm ViT whose last ``blocks[-1].attn`` has a ``fused_attn`` flag and an ``attn_drop`` after its softmax."""

    name = "timm"
    architecture_prefix = ("vit_", "deit_", "deit3_", "eva", "beit", "vitamin_", "flexivit_")
    timm_classes = ("VisionTransformer", "Eva", "Beit")  # the tested ones; any class with the pattern is read
    num_prefix_tokens = 1  # the class default; an instance reads the model's own count
    fallback: ClassVar[bool] = True
    """Matched only when no other registered timm family reads the model (a subclass sets False)."""
    short_names: ClassVar[dict[str, str]] = {
        **{f"timm-deit-{size}": f"timm/deit_{size}_patch16_224.fb_in1k" for size in DEIT_SIZES},
        "timm-deit3-small": "timm/deit3_small_patch16_224.fb_in1k",
        "timm-eva02-tiny": "timm/eva02_tiny_patch14_224.mim_in22k",
        "timm-vit-small-reg4-dinov2": "timm/vit_small_patch14_reg4_dinov2.lvd142m",
    }
    recipe_image_size: ClassVar[int] = 224
    """The resolution a short name's checkpoint is built at from scratch (DINOv2's default is 518 px)."""

    tiny_architecture = TIMM_TESTED[0][1]
    tiny_model_args: ClassVar[dict[str, object]] = TIMM_TESTED[0][2]

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        module = self.backbone
        self.num_prefix_tokens = int(module.num_prefix_tokens)
        pool = getattr(module, "global_pool", None)
        if getattr(module, "attn_pool", None) is not None or pool not in POOLS:
            raise ValueError(
                f"SMMix pools region tokens as the model pools its own (class token or mean), but this "
                f"{type(module).__name__} has global_pool={pool!r}; build it with global_pool='token' or 'avg'."
            )
        if pool == "avg" and getattr(module, "pool_include_prefix", False):
            raise ValueError(
                f"this {type(module).__name__} averages its prefix tokens with the image tokens "
                "(pool_include_prefix=True), which a region mean cannot stand in for; build it without."
            )

    # ---- which models belong here ----

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        return super().matches(config) and not (cls.fallback and cls._claimed_by_another(config=config))

    @classmethod
    def matches_model(cls, model: nn.Module) -> bool:
        module = timm_module_of(model)
        if module is None or (cls.fallback and cls._claimed_by_another(model=model)):
            return False
        if not cls.fallback:
            return type(module).__name__ in cls.timm_classes
        blocks = getattr(module, "blocks", None)
        if not isinstance(blocks, (nn.Sequential, nn.ModuleList)) or len(blocks) == 0:
            return False
        attention = getattr(blocks[-1], "attn", None)
        shared = ("patch_embed", "norm", "fc_norm", "head", "num_prefix_tokens", "global_pool")
        return (
            hasattr(attention, "fused_attn")
            and isinstance(getattr(attention, "attn_drop", None), nn.Module)
            and all(hasattr(module, attribute) for attribute in shared)
        )

    @classmethod
    def _claimed_by_another(cls, config: PretrainedConfig | None = None, model: nn.Module | None = None) -> bool:
        """Whether a registered timm family with a file of its own reads this configuration or model."""
        others = [
            family
            for family in registered_backbones()
            if issubclass(family, TimmBackbone) and not getattr(family, "fallback", False)
        ]
        if model is not None:
            return any(family.matches_model(model) for family in others)
        return any(family.matches(config) for family in others)

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        """The architecture at :attr:`recipe_image_size` (its position embedding and input size)."""
        config = super().scratch_config(hub_id)
        if config is not None:
            size = cls.recipe_image_size
            config.model_args = {"img_size": size, "pretrained_cfg_overlay": {"input_size": (3, size, size)}}
        return config

    @classmethod
    def timm_model_args_for_image_size(cls, size: int) -> dict[str, object]:
        """The position embedding (and EVA's rotary grid) is built for ``img_size``: an input size override sets it."""
        return {"img_size": size}

    # ---- what the probe reads ----

    def last_attention(self) -> nn.Module:
        return self.backbone.blocks[-1].attn

    def motivated_forward_context(self) -> AbstractContextManager[None]:
        """The last block forms its softmax (``fused_attn`` off) for the motivated forward only."""
        return _unfused(self.last_attention())

    def attention_capture_modules(self) -> tuple[nn.Module, ...]:
        return (self.last_attention().attn_drop,)

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """Eq. 6 from ``attn_drop``'s output: the last block's probabilities ``[B, heads, T, T]``."""
        (probabilities,) = captures
        grid = self.token_grid(image_size)
        self.require_probabilities(probabilities, self.num_prefix_tokens + grid[0] * grid[1])
        scores = image_attention_score(probabilities.float(), self.num_prefix_tokens)
        return scores.view(scores.shape[0], *grid)

    def require_probabilities(self, captured: torch.Tensor, tokens: int) -> None:
        """Refuse a capture that is not ``[B, heads, T, T]`` softmax probabilities over ``tokens`` tokens."""
        shape = tuple(captured.shape)
        rows = captured.float().sum(dim=-1) if captured.dim() == 4 else None
        if (
            rows is None
            or shape[-2:] != (tokens, tokens)
            or not torch.allclose(rows, torch.ones_like(rows), atol=1e-3)
            or bool((captured < 0).any())
        ):
            raise RuntimeError(
                f"the last attention block's attn_drop gave {list(shape)}, not softmax probabilities over "
                f"{tokens} tokens ({self.num_prefix_tokens} prefix + the image grid); SMMix cannot read this "
                f"{type(self.last_attention()).__name__}."
            )

    def declared_image_size(self) -> tuple[int, int] | None:
        """``patch_embed.img_size``, the size the model was built for, or None under ``dynamic_img_size`` (a flag
        of the model: timm's ``PatchEmbed`` then only has ``strict_img_size=False``)."""
        if getattr(self.backbone, "dynamic_img_size", False):
            return None
        return super().declared_image_size()

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The image-token grid: ``patch_embed.grid_size`` at the size the model was built for, its
        ``dynamic_feat_size`` under ``dynamic_img_size``."""
        patch_embed = self.backbone.patch_embed
        built = self.declared_image_size()
        if built is None and hasattr(patch_embed, "dynamic_feat_size"):
            return tuple(int(side) for side in patch_embed.dynamic_feat_size(tuple(image_size)))
        if built is not None and tuple(image_size) != built:
            raise ValueError(
                f"this {type(self.backbone).__name__} was built for {built[0]}x{built[1]} inputs "
                f"(patch_embed.img_size) but gets {image_size[0]}x{image_size[1]}; build it with "
                f"img_size={image_size[0]} or dynamic_img_size=True."
            )
        return tuple(int(side) for side in patch_embed.grid_size)

    def final_norm(self) -> nn.Module:
        return self.backbone.norm

    def head_input(self) -> nn.Module:
        return self.backbone.fc_norm

    # ---- the class token's attention with gradients (TransMix), from timm's plain Attention only ----

    @property
    def reads_class_attention(self) -> bool:
        """A class token and timm's plain ``Attention`` (fused ``qkv``) in the last block."""
        try:
            self.plain_attention()
        except ValueError:
            return False
        return self.num_prefix_tokens > 0

    def plain_attention(self) -> nn.Module:
        attention = self.last_attention()
        plain = type(attention).__name__ == "Attention" and type(attention).__module__.startswith("timm.layers")
        if not plain or not isinstance(getattr(attention, "qkv", None), nn.Linear):
            raise ValueError(
                f"TransMix forms the class token's attention from timm's plain Attention (fused qkv), but this "
                f"model's last block has {type(attention).__name__}; train it without TransMix."
            )
        return attention

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        """Queries and keys both come out of the fused ``qkv``: the probe keeps its output twice."""
        qkv = self.plain_attention().qkv
        return qkv, qkv

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.plain_attention()
        return attention.head_dim, attention.scale

    def attention_probabilities(
        self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """``softmax(q_norm(q)·k_norm(k)ᵀ·scale)`` ``[B, heads, T, T]`` from ``qkv`` outputs ``[B, T, 3·heads·d]``
        (``query`` and ``key`` are the same output; the queries are its first third, the keys its second)."""
        attention = self.plain_attention()
        head_dim, scale = self.head_dim_and_scale()

        def heads(states: torch.Tensor, index: int) -> torch.Tensor:
            batch, tokens, _ = states.shape
            return states.reshape(batch, tokens, 3, -1, head_dim)[:, :, index].transpose(1, 2)

        query, key = attention.q_norm(heads(query, 0)), attention.k_norm(heads(key, 1))
        logits = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
        return logits.softmax(dim=-1)


@contextmanager
def _unfused(attention: nn.Module) -> Iterator[None]:
    """``attention.fused_attn = False`` inside the block, its own value again after it."""
    fused = attention.fused_attn
    attention.fused_attn = False
    try:
        yield
    finally:
        attention.fused_attn = fused
