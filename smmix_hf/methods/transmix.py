"""TransMix (Chen et al., CVPR 2022): the mixed label re-weighted by the class token's attention.

A window method pastes a source window into the target; TransMix sets the source label's weight of
each mixed image to ``λ = ½ (λ_area + λ_attn)``: ``λ_area`` is the window's share of the image and
``λ_attn`` the share of the class token's attention over the image tokens that falls inside the window.
The attention is that of the class-token query in the **last** block of the **mixed** forward itself (no
extra forward), averaged over heads, read by the probe from the block's query and key projections while
the model keeps its own attention kernel. ``λ`` is a label weight and carries no gradient.

``mix_method: transmix`` is CutMix with these labels; ``label_reweighting: transmix`` applies them to
SMMix's L_cls (Eq. 9; the paper's Tab. 6, SMMix + TransMix). Models without a class token in their last
attention block (Swin, PVT-v2, CaiT's self-attention blocks) are refused before training.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch

from smmix_hf.methods.base import LabelReweighting

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe

__all__ = ["TransMix", "transmix_fraction"]


def transmix_fraction(area_fraction: float, class_attention: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
    """``λ = ½ (λ_area + λ_attn)`` per sample ``[B]``.

    Args:
        area_fraction: ``λ_area``, the source window's share of the image.
        class_attention: ``[B, N]`` attention of the class token to each image token (head mean).
        source_mask: bool ``[B, gh, gw]`` with ``gh·gw = N``, True inside the pasted window.
    """
    attention = class_attention.detach().float()
    inside = source_mask.flatten(1).to(attention.dtype)
    if inside.shape != attention.shape:
        raise ValueError(f"source_mask has {inside.shape[1]} tokens but the attention covers {attention.shape[1]}.")
    attention_share = (attention * inside).sum(dim=1) / attention.sum(dim=1)
    return 0.5 * (area_fraction + attention_share)


class TransMix(LabelReweighting):
    """TransMix's label weights for a window method (:func:`transmix_fraction`)."""

    def check_model(self, probe: SMMixProbe | None) -> None:
        if probe is not None and probe.backbone.num_prefix_tokens > 0 and not probe.supports_class_attention:
            raise ValueError(
                f"TransMix reads the class token's attention during the mixed forward, which SMMix forms from the "
                f"last block's queries and keys (transformers ViT, DeiT and PVT; timm's plain Attention); "
                f"{type(probe.model).__name__}'s last block is not one of those (docs/backbones.md): train it without "
                "TransMix."
            )
        if probe is None or not probe.supports_class_attention:
            model = "the model" if probe is None else type(probe.model).__name__
            raise ValueError(
                f"TransMix re-weights labels by the class token's attention, but {model} has no class token in "
                "its last attention block (Swin and PVT-v2 have none; CaiT's joins after it); use a ViT, DeiT "
                "or PVT model, or train without TransMix."
            )

    def mixed_forward(self, probe: SMMixProbe, image_size: tuple[int, int]) -> AbstractContextManager[Any]:
        return probe.reading_class_attention(image_size)

    def source_fraction(self, area_fraction: float, source_mask: torch.Tensor, probe: SMMixProbe) -> torch.Tensor:
        return transmix_fraction(area_fraction, probe.take_class_attention(), source_mask)[:, None]
