"""Pure tensor math on a model's token sequences: the score a token receives (Eq. 6) and region means
(Eq. 10-11).

Nothing here knows about models. The backbones and the probe compute with these functions;
``smmix_hf.mixing`` and ``smmix_hf.losses`` export them as part of the public API.
"""

from __future__ import annotations

import torch

__all__ = ["image_attention_score", "pool_region_tokens"]


def image_attention_score(attentions: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """Image attention score of Eq. 6: the attention each image token receives.

    Args:
        attentions: ``[B, heads, T, T]`` softmax attention of one layer (rows are queries).
        num_prefix_tokens: class / distillation tokens in front of the image tokens; they are dropped
            from both the query rows and the key columns.

    Returns:
        ``[B, N]`` with ``N = T - num_prefix_tokens``: the attention paid to each image token, averaged
        over heads and over the image-token query rows.
    """
    if attentions.dim() != 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ValueError(f"attentions must be [B, heads, T, T]; got shape {tuple(attentions.shape)}.")
    if not 0 <= num_prefix_tokens < attentions.shape[-1]:
        raise ValueError(f"num_prefix_tokens={num_prefix_tokens} leaves no image tokens in T={attentions.shape[-1]}.")
    image_block = attentions[:, :, num_prefix_tokens:, num_prefix_tokens:]
    return image_block.float().mean(dim=(1, 2))


def pool_region_tokens(image_tokens: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the output tokens inside and outside the pasted window (Eq. 10-11).

    Args:
        image_tokens: ``[B, N, D]`` final-layer image tokens (prefix tokens removed), raster order.
        source_mask: bool ``[B, gh, gw]`` with ``gh·gw = N``, True inside the pasted window. Every
            sample must have tokens on both sides of the window.

    Returns:
        ``[2, B, D]``: index 0 the inside mean (source region), index 1 the outside mean (target region).
    """
    inside = source_mask.flatten(1).to(image_tokens.dtype)
    if inside.shape[1] != image_tokens.shape[1]:
        raise ValueError(
            f"source_mask has {inside.shape[1]} tokens but the model returned {image_tokens.shape[1]} image tokens."
        )
    weights = torch.stack((inside, 1.0 - inside))
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return torch.einsum("rbn,bnd->rbd", weights, image_tokens)
