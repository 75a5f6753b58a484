"""One SMMix training step, written plainly from the paper and the official code's conventions.

Nothing here imports ``smmix_hf``. Attention comes from an eager copy of the model with
``output_attentions=True``; tokens are read from the backbone's ``last_hidden_state`` (after the
final norm); windows are found and pasted with Python loops; the losses are written out term by term.

Conventions (Chen et al., ICCV 2023, and github.com/ChenMnZ/SMMix):
- sample ``i`` takes its source from sample ``B-1-i``;
- Eq. 6: score = attention the image tokens receive, averaged over heads and image-token queries;
- Eq. 7-8: the source window has the largest score sum, the target window the smallest; the first
  window in row-major order wins ties; λ = hw/N is the source's share;
- Eq. 9: L_cls = CE(z_mixed, λ·y_src + (1-λ)·y_tgt);
- Eq. 10-13: L_fine = ½ (CE(head(mean inside) , y_src) + CE(head(mean outside), y_tgt)), where head is what
  the model applies to its own pooled feature (the classifier; for BEiT its pooler's norm, then the classifier;
  DINOv2's classifier reads ``cat(class token, mean of the patch tokens)``, so a region mean r goes in as
  ``cat(r, r)``);
- Eq. 14: L_con = KL(softmax(λ·z_src + (1-λ)·z_tgt) ‖ softmax(z_mixed)), batch mean;
- every CE uses label-smoothed targets ``(1-ε)·onehot + ε/C``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

# model_type -> number of prefix tokens in its final sequence, as each model's embeddings build it in transformers:
# a class token (ViT, BEiT, PVT's last stage, DINOv2, ViT-MSN; CLIP's ``class_embedding``), DeiT's class and
# distillation tokens, none for Swin, IJEPA and SigLIP. DINOv2 with registers puts ``num_register_tokens`` register
# tokens after its class token (:func:`prefix_tokens`).
PREFIX_TOKENS = {
    "vit": 1,
    "deit": 2,
    "swin": 0,
    "pvt": 1,
    "beit": 1,
    "dinov2": 1,
    "dinov2_with_registers": 1,
    "vit_msn": 1,
    "ijepa": 0,
    "siglip": 0,
    "clip": 1,
}
# Two-tower models keep the image encoder's shape in ``vision_config``.
TWO_TOWER = ("siglip", "clip")


def prefix_tokens(config) -> int:
    """Tokens in front of the image tokens: :data:`PREFIX_TOKENS`, plus DINOv2's register tokens."""
    registers = config.num_register_tokens if config.model_type == "dinov2_with_registers" else 0
    return PREFIX_TOKENS[config.model_type] + registers


def eager_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` that materialises attention probabilities."""
    twin = copy.deepcopy(model)
    twin.set_attn_implementation("eager")
    return twin.eval()


def backbone_of(model: nn.Module) -> nn.Module:
    """The encoder: the classifier's one child that is not ``classifier`` (``vit``, ``dinov2``, SigLIP's and CLIP's
    ``vision_model`` ...)."""
    (encoder,) = [child for name, child in model.named_children() if name != "classifier"]
    return encoder


def token_grid_of(model: nn.Module, image_size: int) -> tuple[int, int]:
    """The final token grid, read off an actual forward (no formulas shared with the package)."""
    config = model.config
    if config.model_type in ("vit", "deit", "beit", "dinov2", "dinov2_with_registers", "vit_msn", "ijepa"):
        side = image_size // config.patch_size
    elif config.model_type in TWO_TOWER:
        side = image_size // config.vision_config.patch_size
    elif config.model_type == "swin":
        side = image_size // (config.patch_size * 2 ** (len(config.depths) - 1))
    elif config.model_type == "pvt":
        side = image_size // math.prod(config.strides)
    else:
        raise ValueError(config.model_type)
    return side, side


def last_block_attention_scores(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean logits ``[B, C]`` and Eq. 6 scores ``[B, gh, gw]`` from an eager, eval-mode forward."""
    twin = eager_copy(model)
    config = twin.config
    with torch.no_grad():
        outputs = twin(pixel_values=images, output_attentions=True)
    attention = outputs.attentions[-1].float()
    gh, gw = token_grid_of(twin, images.shape[-1])
    batch = images.shape[0]
    scores = torch.zeros(batch, gh, gw)
    if config.model_type == "swin":
        layer = backbone_of(twin).encoder.layers[-1].blocks[-1]
        window, shift = int(layer.window_size), int(layer.shift_size)
        windows_per_row = gw // window
        windows_per_image = (gh // window) * windows_per_row
        for b in range(batch):
            for w_index in range(windows_per_image):
                probs = attention[b * windows_per_image + w_index]  # [heads, ws², ws²]
                received = probs.mean(dim=0).mean(dim=0)  # average over heads, then over query rows
                top = (w_index // windows_per_row) * window
                left = (w_index % windows_per_row) * window
                for k in range(window * window):
                    # position in the cyclically shifted map, then back to the image's own position
                    row, col = top + k // window, left + k % window
                    scores[b, (row + shift) % gh, (col + shift) % gw] = received[k]
    else:
        prefix = prefix_tokens(config)
        for b in range(batch):
            image_block = attention[b, :, prefix:, prefix:]
            received = image_block.mean(dim=0).mean(dim=0)
            for n in range(gh * gw):
                scores[b, n // gw, n % gw] = received[n]
    return outputs.logits.float(), scores


def best_window(scores: torch.Tensor, size: int, largest: bool) -> tuple[int, int]:
    """Top-left corner of the size×size window with the largest (smallest) sum; first one wins ties."""
    gh, gw = scores.shape
    best, corner = None, (0, 0)
    for row in range(gh - size + 1):
        for col in range(gw - size + 1):
            total = float(scores[row : row + size, col : col + size].sum())
            if best is None or (total > best if largest else total < best):
                best, corner = total, (row, col)
    return corner


@dataclass
class ReferenceMix:
    images: torch.Tensor
    inside: torch.Tensor  # bool [B, gh, gw]
    source_fraction: float


def max_min_mix(images: torch.Tensor, scores: torch.Tensor, size: int) -> ReferenceMix:
    batch, _, height, width = images.shape
    gh, gw = scores.shape[1:]
    patch_h, patch_w = height // gh, width // gw
    mixed = images.clone()
    inside = torch.zeros(batch, gh, gw, dtype=torch.bool)
    for i in range(batch):
        source = batch - 1 - i
        src_row, src_col = best_window(scores[source], size, largest=True)
        tgt_row, tgt_col = best_window(scores[i], size, largest=False)
        for dr in range(size):
            for dc in range(size):
                sy, sx = (src_row + dr) * patch_h, (src_col + dc) * patch_w
                ty, tx = (tgt_row + dr) * patch_h, (tgt_col + dc) * patch_w
                mixed[i, :, ty : ty + patch_h, tx : tx + patch_w] = images[
                    source, :, sy : sy + patch_h, sx : sx + patch_w
                ]
                inside[i, tgt_row + dr, tgt_col + dc] = True
    return ReferenceMix(mixed, inside, size * size / (gh * gw))


def smoothed(label: int, num_classes: int, smoothing: float) -> torch.Tensor:
    target = torch.full((num_classes,), smoothing / num_classes)
    target[label] += 1.0 - smoothing
    return target


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * torch.log_softmax(logits.float(), dim=-1)).sum()


def final_tokens(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The image tokens after the final norm ``[B, N, D]``, from the training-mode model."""
    sequence = backbone_of(model)(pixel_values=images).last_hidden_state
    return sequence[:, prefix_tokens(model.config) :]


def region_head(model: nn.Module, linear: nn.Module | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Logits of a pooled region feature ``[D]``: what the model's head does with its own pooled feature,
    with ``linear`` (the official code's second head) in place of the classifier when given.

    BEiT with mean pooling (``BeitPooler``) normalises the mean of the patch tokens with the pooler's layer
    norm before the classifier. DINOv2 (with or without registers) feeds ``cat(class token, patch mean)``: a region
    mean r stands in for both, ``cat(r, r)``. The other models feed the pooled feature to the classifier directly:
    the class token (ViT, DeiT, ViT-MSN, PVT) or the mean of the patch tokens (IJEPA, SigLIP, CLIP, Swin).
    """
    classifier = model.classifier if linear is None else linear
    pooler_norm = getattr(getattr(backbone_of(model), "pooler", None), "layernorm", None)
    if model.config.model_type == "beit" and pooler_norm is not None:
        return lambda feature: classifier(pooler_norm(feature))
    if model.config.model_type in ("dinov2", "dinov2_with_registers"):
        return lambda feature: classifier(torch.cat((feature, feature), dim=-1))
    return classifier


def reference_smmix_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    region_side: int,
    smoothing: float = 0.1,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    consistency: str = "logits",
    motivator: nn.Module | None = None,
    region_linear: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """Loss terms of one SMMix step; ``loss`` is differentiable w.r.t. ``model``'s parameters (and
    ``region_linear``'s, the separate region head, when given)."""
    clean_logits, scores = last_block_attention_scores(motivator if motivator is not None else model, images)
    mix = max_min_mix(images, scores, region_side)
    num_classes = model.config.num_labels

    mixed_logits = model(pixel_values=mix.images).logits.float()
    tokens = final_tokens(model, mix.images)
    classifier = region_head(model, region_linear)
    return smmix_losses(
        mixed_logits, tokens, mix, clean_logits, labels, classifier, num_classes, smoothing, weights, consistency
    )


def smmix_losses(
    mixed_logits: torch.Tensor,
    tokens: torch.Tensor,
    mix: ReferenceMix,
    clean_logits: torch.Tensor,
    labels: torch.Tensor,
    classifier: Callable[[torch.Tensor], torch.Tensor],
    num_classes: int,
    smoothing: float = 0.1,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    consistency: str = "logits",
) -> dict[str, torch.Tensor]:
    """The three loss terms, sample by sample, from the mixed logits ``[B, C]``, the mixed image's final image
    tokens ``[B, N, D]`` (raster order), the clean logits and ``classifier`` (pooled feature ``[D]`` → logits);
    model-agnostic."""
    lam = mix.source_fraction
    batch = mixed_logits.shape[0]
    loss_cls = loss_fine = loss_con = torch.zeros(())
    for i in range(batch):
        source = batch - 1 - i
        y_src = smoothed(int(labels[source]), num_classes, smoothing)
        y_tgt = smoothed(int(labels[i]), num_classes, smoothing)
        loss_cls = loss_cls + cross_entropy(mixed_logits[i], lam * y_src + (1 - lam) * y_tgt) / batch

        flags = mix.inside[i].flatten()
        inside_mean = tokens[i][flags].mean(dim=0)
        outside_mean = tokens[i][~flags].mean(dim=0)
        fine = cross_entropy(classifier(inside_mean), y_src) + cross_entropy(classifier(outside_mean), y_tgt)
        loss_fine = loss_fine + 0.5 * fine / batch

        if consistency == "logits":
            target = torch.softmax(lam * clean_logits[source] + (1 - lam) * clean_logits[i], dim=-1)
        else:
            target = lam * torch.softmax(clean_logits[source], -1) + (1 - lam) * torch.softmax(clean_logits[i], -1)
        log_q = torch.log_softmax(mixed_logits[i], dim=-1)
        loss_con = loss_con + (torch.xlogy(target, target) - target * log_q).sum() / batch

    w_cls, w_fine, w_con = weights
    loss = w_cls * loss_cls + w_fine * loss_fine + w_con * loss_con
    return {"loss": loss, "loss_cls": loss_cls, "loss_fine": loss_fine, "loss_con": loss_con}
