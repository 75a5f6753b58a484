"""TransMix label weights (Chen et al., CVPR 2022), written plainly, for CutMix windows and for SMMix.

Nothing here imports ``smmix_hf``. The class token's attention comes from an eager copy of the model with
``output_attentions=True`` run on the **mixed** images (the trainer reads the same attention inside its own
mixed forward); boxes, masks and labels are built with Python loops.

Conventions:
- sample ``i`` takes its source from sample ``B-1-i``;
- ``a_i`` = attention of the class token (query 0) to the image tokens in the last block, averaged over heads;
- a CutMix box covers token ``(r, c)`` when the token's top-left pixel ``(r·P, c·P)`` lies inside the box
  (nearest-neighbour downsampling of the box's pixel mask);
- ``λ_i = ½ (λ_area + Σ_{inside} a_i / Σ a_i)``; the mixed label is ``λ_i·y_src + (1-λ_i)·y_tgt``;
- with SMMix, only L_cls takes ``λ_i``; L_fine and L_con stay as in the SMMix step (L_con with the area share).
"""

from __future__ import annotations

import torch
from torch import nn

from reference.smmix_step import (
    PREFIX_TOKENS,
    cross_entropy,
    eager_copy,
    final_tokens,
    last_block_attention_scores,
    max_min_mix,
    smoothed,
    token_grid_of,
)


def class_token_attention(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``[B, N]``: the class token's attention to every image token in the last block, mean over heads."""
    twin = eager_copy(model)
    with torch.no_grad():
        attention = twin(pixel_values=images, output_attentions=True).attentions[-1].float()
    prefix = PREFIX_TOKENS[twin.config.model_type]
    batch, heads = attention.shape[:2]
    rows = torch.zeros(batch, attention.shape[-1] - prefix)
    for b in range(batch):
        for h in range(heads):
            rows[b] += attention[b, h, 0, prefix:] / heads
    return rows


def transmix_lambdas(attention: torch.Tensor, inside: torch.Tensor, area: float) -> list[float]:
    """``λ_i = ½ (area + attention mass inside the window)`` for every sample."""
    lambdas = []
    for b in range(attention.shape[0]):
        flags = inside[b].flatten()
        mass = sum(float(attention[b, n]) for n in range(flags.numel()) if flags[n])
        lambdas.append(0.5 * (area + mass / float(attention[b].sum())))
    return lambdas


def cutmix_box_mix(images: torch.Tensor, box: tuple[int, int, int, int], grid: tuple[int, int]):
    """The CutMix batch, the box's area share and the tokens the box covers (bool ``[B, gh, gw]``)."""
    top, bottom, left, right = box
    batch, _, height, width = images.shape
    mixed = images.clone()
    for i in range(batch):
        for y in range(top, bottom):
            for x in range(left, right):
                mixed[i, :, y, x] = images[batch - 1 - i, :, y, x]
    gh, gw = grid
    inside = torch.zeros(batch, gh, gw, dtype=torch.bool)
    for r in range(gh):
        for c in range(gw):
            y, x = r * (height // gh), c * (width // gw)
            inside[:, r, c] = top <= y < bottom and left <= x < right
    return mixed, (bottom - top) * (right - left) / (height * width), inside


def mixed_label_loss(logits: torch.Tensor, labels: torch.Tensor, lambdas: list[float], smoothing: float):
    batch, num_classes = logits.shape
    loss = torch.zeros(())
    for i in range(batch):
        y_src = smoothed(int(labels[batch - 1 - i]), num_classes, smoothing)
        y_tgt = smoothed(int(labels[i]), num_classes, smoothing)
        loss = loss + cross_entropy(logits[i], lambdas[i] * y_src + (1 - lambdas[i]) * y_tgt) / batch
    return loss


def reference_transmix_cutmix_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    box: tuple[int, int, int, int],
    smoothing: float = 0.1,
) -> dict[str, torch.Tensor | list[float] | float]:
    """``mix_method: transmix``: CutMix's box with TransMix's labels; ``loss`` is differentiable."""
    grid = token_grid_of(model, images.shape[-1])
    mixed, area, inside = cutmix_box_mix(images, box, grid)
    lambdas = transmix_lambdas(class_token_attention(model, mixed), inside, area)
    logits = model(pixel_values=mixed).logits.float()
    loss_cls = mixed_label_loss(logits, labels, lambdas, smoothing)
    return {"loss": loss_cls, "loss_cls": loss_cls, "lambdas": lambdas, "area": area}


def reference_transmix_smmix_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    region_side: int,
    smoothing: float = 0.1,
) -> dict[str, torch.Tensor | list[float] | float]:
    """SMMix + TransMix (the SMMix paper's Tab. 6): max-min windows, TransMix λ in L_cls, L_fine, L_con."""
    clean_logits, scores = last_block_attention_scores(model, images)
    mix = max_min_mix(images, scores, region_side)
    area, batch, num_classes = mix.source_fraction, images.shape[0], model.config.num_labels
    lambdas = transmix_lambdas(class_token_attention(model, mix.images), mix.inside, area)

    logits = model(pixel_values=mix.images).logits.float()
    tokens = final_tokens(model, mix.images)
    loss_cls = mixed_label_loss(logits, labels, lambdas, smoothing)
    loss_fine = loss_con = torch.zeros(())
    for i in range(batch):
        source = batch - 1 - i
        y_src = smoothed(int(labels[source]), num_classes, smoothing)
        y_tgt = smoothed(int(labels[i]), num_classes, smoothing)
        flags = mix.inside[i].flatten()
        fine = cross_entropy(model.classifier(tokens[i][flags].mean(dim=0)), y_src) + cross_entropy(
            model.classifier(tokens[i][~flags].mean(dim=0)), y_tgt
        )
        loss_fine = loss_fine + 0.5 * fine / batch
        target = torch.softmax(area * clean_logits[source] + (1 - area) * clean_logits[i], dim=-1)
        log_q = torch.log_softmax(logits[i], dim=-1)
        loss_con = loss_con + (torch.xlogy(target, target) - target * log_q).sum() / batch
    loss = loss_cls + loss_fine + loss_con
    return {
        "loss": loss,
        "loss_cls": loss_cls,
        "loss_fine": loss_fine,
        "loss_con": loss_con,
        "lambdas": lambdas,
        "area": area,
    }
