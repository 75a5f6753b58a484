"""timm Swin (``SwinTransformer``: Swin-T/S/B of the paper's Tab. 1), raw or inside
``TimmWrapperForImageClassification``. It has a file of its own because its attention is windowed and shifted: the
scores are put together window by window, with the shift undone.

Swin has no class token; its head averages the last stage's tokens, so the SMMix grid is that stage's grid
(7×7 at 224 px, each token covering 32 pixels) and the score (Eq. 6) comes from the last block of the last stage.

Score. That block is window attention: the stage's ``[B, H, W, C]`` map is cyclically shifted by
``-shift_size``, cut into ``window_size`` windows, and each window attends within itself with
``softmax(q·kᵀ·scale + relative position bias + shift mask)`` (fused into SDPA when ``fused_attn``). The probe
keeps the fused ``qkv`` output ``[B·windows, ws², 3·C]`` during the motivated forward; every token's score is the
attention it receives inside its own window, averaged over heads and that window's queries, computed in window
order and then put back on the image grid: the window partition is undone and the cyclic shift rolled back
(``+shift_size``). At 224 px the last stage is one 7×7 window with shift 0; at larger sizes (e.g. 448 px: a
14×14 stage, four windows, shift 3 in odd blocks) the shift and its mask apply. A last stage that timm has to pad
to whole windows is refused: its padding tokens would join the queries of the score.

Regions (Eq. 10-11). The final ``norm`` outputs ``[B, H, W, C]`` (NHWC); it is flattened to ``[B, H·W, C]`` in
raster order and mean-pooled inside and outside the pasted window. The head is a ``ClassifierHead``
(``global_pool`` → ``drop`` → ``fc``); the pooled region features are appended at ``drop``'s input, so they go
through what the model's own pooled feature goes through and ``fc`` computes the region logits.

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
    pass

__all__ = ["TimmSwinBackbone"]

SWIN_SIZES = ("tiny", "small", "base")


@register_backbone
class TimmSwinBackbone(TimmBackbone, QueryKeyBackbone):
    """timm ``SwinTransformer``: no prefix token; the score is read window by window in the last block."""

    name = "timm_swin"
    architecture_prefix = "swin_"
    timm_classes = ("SwinTransformer",)
    num_prefix_tokens = 0
    short_names: ClassVar[dict[str, str]] = {
        f"timm-swin-{size}": f"timm/swin_{size}_patch4_window7_224.ms_in1k" for size in SWIN_SIZES
    }

    tiny_architecture = "swin_tiny_patch4_window7_224"
    # Two stages on 32 px, the last one 8×8 tokens in four shifted 4×4 windows.
    tiny_model_args: ClassVar[dict[str, object]] = dict(
        img_size=32, patch_size=2, embed_dim=16, depths=(1, 2), num_heads=(1, 2), window_size=4
    )

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        head = self.backbone.head
        if getattr(head.global_pool, "pool_type", None) != "avg" or not isinstance(head.flatten, nn.Identity):
            raise ValueError(
                "SMMix pools region tokens by their mean as Swin's head pools its own, but this SwinTransformer's "
                f"head pools with {getattr(head.global_pool, 'pool_type', None)!r}; build it with global_pool='avg'."
            )

    @classmethod
    def timm_model_args_for_image_size(cls, size: int) -> dict[str, object]:
        """Swin's windows, masks and relative positions are built for ``img_size``: an input size override sets it."""
        return {"img_size": size}

    def classifier(self) -> nn.Module:
        return self.backbone.head.fc

    def head_input(self) -> nn.Module:
        return self.backbone.head.drop

    def final_norm(self) -> nn.Module:
        return self.backbone.norm

    def image_tokens(self, sequence: torch.Tensor) -> torch.Tensor:
        """The final norm's ``[B, H, W, C]`` map as ``[B, H·W, C]`` tokens in raster order."""
        return sequence.flatten(1, 2)

    def last_block(self) -> nn.Module:
        return self.backbone.layers[-1].blocks[-1]

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        """Queries and keys both come out of the fused ``qkv``: the probe keeps its output twice."""
        qkv = self.last_block().attn.qkv
        return qkv, qkv

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.last_block().attn
        return attention.qkv.out_features // (3 * attention.num_heads), attention.scale

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The last stage's grid; refused when timm would pad it to whole windows."""
        return self._windows(image_size)[0]

    def _windows(self, image_size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """The last block's (grid, window, shift), refusing a grid that timm pads to whole windows."""
        stride = int(self.backbone.feature_info[-1]["reduction"])
        grid = patch_grid(image_size, (stride, stride), "Swin's total stride (patch size times the patch mergings)")
        block = self.last_block()
        window, shift = tuple(int(side) for side in block.window_size), tuple(int(side) for side in block.shift_size)
        if grid[0] % window[0] or grid[1] % window[1]:
            raise ValueError(
                f"Swin's last stage is {grid[0]}x{grid[1]} tokens at {image_size[0]}x{image_size[1]} px, not a whole "
                f"number of its {window[0]}x{window[1]} windows (timm pads it, and the padding would join the score); "
                "use an image size whose last-stage grid is a multiple of the window."
            )
        return grid, window, shift

    def attention_probabilities(
        self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Window attention ``[B·windows, heads, ws², ws²]`` with the relative position bias and, in a shifted
        block, the shift mask, from ``qkv`` outputs ``[B·windows, ws², 3·C]`` (queries first, keys second)."""
        block = self.last_block()
        attention = block.attn
        head_dim, scale = self.head_dim_and_scale()
        (height, width), _, shift = self._windows(image_size)

        def heads(states: torch.Tensor, index: int) -> torch.Tensor:
            windows, tokens, _ = states.shape
            return states.reshape(windows, tokens, 3, -1, head_dim)[:, :, index].transpose(1, 2).float()

        logits = torch.matmul(heads(query, 0), heads(key, 1).transpose(-1, -2)) * scale
        logits = logits + attention._get_rel_pos_bias().float()
        if any(shift):
            mask = block.attn_mask
            if mask is None:  # dynamic_mask: timm builds it for the input's (shifted) map on each forward
                mask = block.get_attn_mask(query.new_zeros(1, height, width, 1))
            windows = mask.shape[0]
            logits = logits.view(-1, windows, *logits.shape[1:]) + mask.float()[None, :, None]
            logits = logits.flatten(0, 1)
        return logits.softmax(dim=-1)

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """Eq. 6 per window, then back on the ``[B, gh, gw]`` grid: undo the window partition, roll the shift back."""
        query, key = captures
        (height, width), window, shift = self._windows(image_size)
        per_window = image_attention_score(self.attention_probabilities(query, key, image_size), 0)
        grid = per_window.view(-1, height // window[0], width // window[1], window[0], window[1])
        grid = grid.permute(0, 1, 3, 2, 4).reshape(-1, height, width)
        if any(shift):
            grid = torch.roll(grid, shifts=shift, dims=(1, 2))
        return grid
