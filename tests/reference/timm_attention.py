"""One SMMix step for timm ViT / DeiT (plain and distilled) and Swin, written plainly; it does not import
``smmix_hf``.

Attention comes from an unfused copy of the model (``fused_attn = False`` in every block): the softmax
probabilities timm itself forms (with ``q_norm`` / ``k_norm``, rotary embeddings, the relative position bias and the
shift mask, whatever the model has), read through torch.fx at the last block's ``attn.softmax`` node
(``timm.utils.AttentionExtract(method="fx")``), not through a hook; for Swin, a pre-hook on its ``attn_drop``. The
token grid is read off the attention's size: the tokens that are not the model's ``num_prefix_tokens``, on a grid
of the image's aspect. Windows are found and pasted with loops and the losses written term by term
(:mod:`reference.smmix_step`, whose conventions this follows). The region head is "what the model applies to its
own pooled feature" (Eq. 12-13), read from timm's ``forward_head``:

- ``VisionTransformer``, ``Eva``, ``Beit`` and the other generic ViTs: ``head(head_drop(fc_norm(feature)))``;
- ``VisionTransformerDistilled``: ``(head(head_drop(feature)) + head_dist(head_drop(feature))) / 2``, the region
  feature standing in for both the class and the distillation token;
- ``SwinTransformer``: ``head.fc(head.drop(feature))`` (after ``head.global_pool``, which the region mean replaces).

The model may be a raw timm model (called positionally, returns logits) or ``TimmWrapperForImageClassification``
(called with ``pixel_values``, returns ``.logits``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from reference.smmix_step import max_min_mix, smmix_losses


def timm_module(model: nn.Module) -> nn.Module:
    """The timm model: inside the transformers wrapper, or the model itself."""
    return getattr(model, "timm_model", model)


def logits_of(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    if hasattr(model, "timm_model"):
        return model(pixel_values=images).logits
    return model(images)


def is_swin(module: nn.Module) -> bool:
    return type(module).__name__ == "SwinTransformer"


def last_attention(module: nn.Module) -> nn.Module:
    return module.layers[-1].blocks[-1].attn if is_swin(module) else module.blocks[-1].attn


def unfused_attention(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Clean logits ``[B, C]``, the last block's softmax probabilities as timm forms them without SDPA, and the
    final token grid ``(gh, gw)``, from an eval-mode copy."""
    twin = copy.deepcopy(model).eval()
    module = timm_module(twin)
    kept: dict[str, torch.Tensor] = {}
    if is_swin(module):
        attention = last_attention(module)
        attention.fused_attn = False
        attention.attn_drop.register_forward_pre_hook(lambda _, inputs: kept.update(probs=inputs[0]))
        module.norm.register_forward_hook(lambda _, inputs, output: kept.update(final=output))
    with torch.no_grad():
        logits = logits_of(twin, images)
        if is_swin(module):
            return logits.float(), kept["probs"].float(), (kept["final"].shape[1], kept["final"].shape[2])  # NHWC
        probs = softmax_by_fx(module, images)
    return logits.float(), probs, image_grid(probs.shape[-1] - module.num_prefix_tokens, images.shape[-2:])


def softmax_by_fx(module: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The last block's ``attn.softmax`` output ``[B, heads, T, T]``, traced with torch.fx in a copy whose blocks
    all form their softmax (timm's ``AttentionExtract``)."""
    from timm.utils import AttentionExtract

    unfused = copy.deepcopy(module).eval()
    for layer in unfused.modules():
        if hasattr(layer, "fused_attn"):
            layer.fused_attn = False
    node = f"blocks.{len(unfused.blocks) - 1}.attn.softmax"
    (probs,) = AttentionExtract(unfused, names=[node], method="fx")(images).values()
    return probs.float()


def image_grid(tokens: int, image_size: tuple[int, int]) -> tuple[int, int]:
    """``(gh, gw)`` with ``gh·gw = tokens`` and ``gh / gw`` the image's aspect."""
    height, width = image_size
    rows = round(math.sqrt(tokens * height / width))
    assert rows * (tokens // rows) == tokens, (tokens, image_size)
    return rows, tokens // rows


def eq6_scores(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean logits and Eq. 6 scores ``[B, gh, gw]``: attention each image token receives, averaged over heads
    and image-token query rows; for Swin inside each window, then put back where the token sits in the image."""
    logits, probs, (gh, gw) = unfused_attention(model, images)
    module = timm_module(model)
    batch = images.shape[0]
    scores = torch.zeros(batch, gh, gw)
    if is_swin(module):
        block = module.layers[-1].blocks[-1]
        (win_h, win_w), (shift_h, shift_w) = block.window_size, block.shift_size
        windows_per_row = gw // win_w
        windows_per_image = (gh // win_h) * windows_per_row
        for b in range(batch):
            for w_index in range(windows_per_image):
                received = probs[b * windows_per_image + w_index].mean(dim=0).mean(dim=0)
                top = (w_index // windows_per_row) * win_h
                left = (w_index % windows_per_row) * win_w
                for k in range(win_h * win_w):
                    # position in the cyclically shifted map (shifted by -shift), then back to the image's own
                    row, col = top + k // win_w, left + k % win_w
                    scores[b, (row + shift_h) % gh, (col + shift_w) % gw] = received[k]
        return logits, scores
    prefix = probs.shape[-1] - gh * gw  # class, distillation, register tokens: whatever is not a patch
    for b in range(batch):
        received = probs[b, :, prefix:, prefix:].mean(dim=0).mean(dim=0)
        for n in range(gh * gw):
            scores[b, n // gw, n % gw] = received[n]
    return logits, scores


def final_image_tokens(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The mixed images' tokens after the final norm, prefix tokens dropped, ``[B, N, D]`` in raster order."""
    module = timm_module(model)
    features = module.forward_features(images)
    if is_swin(module):
        return features.flatten(1, 2)
    return features[:, module.num_prefix_tokens :]


def region_head(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """What timm's ``forward_head`` applies to the model's own pooled feature, applied to a region mean ``[D]``."""
    module = timm_module(model)
    if is_swin(module):
        return lambda feature: module.head.fc(module.head.drop(feature))
    if type(module).__name__ == "VisionTransformerDistilled":
        return lambda feature: (
            (module.head(module.head_drop(feature)) + module.head_dist(module.head_drop(feature))) / 2
        )
    return lambda feature: module.head(module.head_drop(module.fc_norm(feature)))


def assert_timm_region_logits_follow_the_head(model: nn.Module, images: torch.Tensor, mask: torch.Tensor) -> None:
    """The probe's inside / outside logits (Eq. 9's region predictions) equal what timm's ``forward_head`` applies to
    the model's own pooled feature, applied to the means of the final image tokens inside and outside ``mask``; the
    forward that pools them still returns the model's plain logits."""
    from smmix_hf.backbones.probe import SMMixProbe
    from smmix_hf.losses import pool_region_tokens

    with torch.no_grad():
        plain_logits = logits_of(model, images)
        probe = SMMixProbe(model)
        with probe.pooling_regions(mask):
            logits = logits_of(model, images)
        inside, outside = pool_region_tokens(final_image_tokens(model, images), mask)
        region_logits, head = probe.take_region_logits(), region_head(model)
        torch.testing.assert_close(region_logits[0], head(inside), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(region_logits[1], head(outside), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, plain_logits)


def reference_timm_smmix_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    region_side: int,
    num_classes: int,
    smoothing: float = 0.1,
) -> dict[str, torch.Tensor]:
    """Loss terms of one SMMix step (paper weights 1, 1, 1; KL target from mixed clean logits)."""
    clean_logits, scores = eq6_scores(model, images)
    mix = max_min_mix(images, scores, region_side)
    mixed_logits = logits_of(model, mix.images).float()
    tokens = final_image_tokens(model, mix.images)
    return smmix_losses(mixed_logits, tokens, mix, clean_logits, labels, region_head(model), num_classes, smoothing)
