"""Swin (transformers ``model_type: swin``): no class token; the grid is the last stage's. It has a file of its own
because its attention is windowed and shifted: the generic reader's one ``[T, T]`` matrix does not exist.

Swin's classifier pools all tokens of the last stage, so the SMMix grid is that stage's grid (7×7 at
224 px, each token covering 32 pixels) and the score is read from the last block of the last stage.
When that stage holds several attention windows, every token's score is read inside its own window
(with the relative position bias and, in a shifted block, the shift mask) and put back at its position.
At 224 px the last stage is a single 7×7 window with shift 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from smmix_hf.backbones.base import QueryKeyBackbone, register_backbone, require_classifier, split_heads
from smmix_hf.tokens import image_attention_score

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["SwinBackbone"]

# Swin sizes: embedding width, depths, heads (patch 4, window 7, 224 px).
SWIN_SHAPES = {
    "tiny": (96, [2, 2, 6, 2], [3, 6, 12, 24]),
    "small": (96, [2, 2, 18, 2], [3, 6, 12, 24]),
    "base": (128, [2, 2, 18, 2], [4, 8, 16, 32]),
}


@register_backbone
class SwinBackbone(QueryKeyBackbone):
    """Swin: no prefix token; the grid is the last stage's, attention is read window by window."""

    name = "swin"
    num_prefix_tokens = 0
    short_names: ClassVar[dict[str, str]] = {
        **{f"swin-{size}": f"microsoft/swin-{size}-patch4-window7-224" for size in SWIN_SHAPES},
        **{f"microsoft/swin-{size}": f"microsoft/swin-{size}-patch4-window7-224" for size in SWIN_SHAPES},
    }

    def __init__(self, model: PreTrainedModel) -> None:
        require_classifier(model, "SwinForImageClassification")
        super().__init__(model)

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        return config.model_type == "swin"

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig:
        """Two stages on 32 px, the last one 8×8 tokens (window 4: four shifted windows; 8: one), 10 classes."""
        from transformers import SwinConfig

        shape = dict(image_size=32, patch_size=2, embed_dim=16, depths=[1, 2], num_heads=[2, 2], window_size=4)
        return SwinConfig(**{**shape, "num_labels": 10, **overrides})

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        from transformers import SwinConfig

        for size, (embed_dim, depths, heads) in SWIN_SHAPES.items():
            if hub_id == f"microsoft/swin-{size}-patch4-window7-224":
                return SwinConfig(
                    image_size=224,
                    patch_size=4,
                    embed_dim=embed_dim,
                    depths=depths,
                    num_heads=heads,
                    window_size=7,
                    drop_path_rate=0.1 if size == "tiny" else 0.3,
                )
        return None

    def final_norm(self) -> nn.Module:
        return self.backbone.layernorm

    def classifier(self) -> nn.Module:
        return self.model.classifier

    def last_layer(self) -> nn.Module:
        return self.backbone.encoder.layers[-1].blocks[-1]

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        attention = self.last_layer().attention
        return attention.q_proj, attention.k_proj

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.last_layer().attention
        return attention.head_dim, attention.scaling

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        patch = self.config.patch_size
        height, width = image_size
        downsample = patch * 2 ** (len(self.config.depths) - 1)
        if height % downsample or width % downsample:
            raise ValueError(
                f"image size {height}x{width} is not divisible by {downsample} (patch {patch} times "
                f"the {len(self.config.depths) - 1} patch mergings); resize images to a multiple of {downsample}."
            )
        return height // downsample, width // downsample

    def attention_probabilities(
        self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Window attention with Swin's relative position bias and, in a shifted block, its shift mask."""
        layer = self.last_layer()
        head_dim, scale = self.head_dim_and_scale()
        query = split_heads(query, head_dim).float()
        key = split_heads(key, head_dim).float()
        logits = torch.matmul(query, key.transpose(-1, -2)) * scale
        logits = logits + layer.attention.relative_position_bias().float()
        shift_mask = self._shift_mask(layer, query.device)
        if shift_mask is not None:
            windows = shift_mask.shape[0]
            logits = logits.view(-1, windows, *logits.shape[1:]) + shift_mask[None, :, None]
            logits = logits.flatten(0, 1)
        return logits.softmax(dim=-1)

    def score_grid(self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        layer = self.last_layer()
        gh, gw = self.token_grid(image_size)
        window = int(layer.window_size)
        padded_h, padded_w = -(-gh // window) * window, -(-gw // window) * window
        per_window = image_attention_score(self.attention_probabilities(query, key, image_size), 0)
        windows_h, windows_w = padded_h // window, padded_w // window
        grid = per_window.view(-1, windows_h, windows_w, window, window)
        grid = grid.permute(0, 1, 3, 2, 4).reshape(-1, padded_h, padded_w)
        if layer.shift_size > 0:
            grid = torch.roll(grid, shifts=(int(layer.shift_size), int(layer.shift_size)), dims=(1, 2))
        return grid[:, :gh, :gw]

    @staticmethod
    def _shift_mask(layer: nn.Module, device: torch.device) -> torch.Tensor | None:
        if layer.shift_size <= 0:
            return None
        gh, gw = layer.input_resolution
        window = int(layer.window_size)
        padded_h, padded_w = -(-gh // window) * window, -(-gw // window) * window
        return layer.get_attn_mask(padded_h, padded_w, dtype=torch.float32, device=device)
