"""Where a model's own SMMix windows fall on the held-out canvases, whose digit boxes are known.

:func:`window_hit_rates` runs the model's motivated forward (eval mode, no grad, Eq. 6 scores through
:class:`smmix_hf.backbones.probe.SMMixProbe`) and places each window side of the regime as SMMix places it:

* ``src_hit``: the max-score window (the one SMMix cuts from a source) overlaps the digit's tokens;
* ``src_cover``: share of the digit's tokens inside that window;
* ``tgt_avoid``: the min-score window (the one SMMix pastes over in a target) misses the digit;
* ``tgt_occlude``: share of the digit's tokens under that window.

Each comes with ``*_random``, the exact expectation for a uniformly placed window.
:class:`WindowProbeCallback` records them, with clean top-1 and the epoch's mean L_cls, at every epoch end.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
from transformers import TrainerCallback

from experiments.canvas import token_box_mask
from experiments.regime import HeldOut, Regime
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.mixing import select_windows

MEASURES = ("src_hit", "src_cover", "tgt_avoid", "tgt_occlude")


@torch.no_grad()
def window_hit_rates(model: torch.nn.Module, held_out: HeldOut, regime: Regime) -> dict[str, float]:
    """Clean top-1 and the window hit rates of ``model`` on the held-out canvases."""
    probe = SMMixProbe(model)
    device = next(model.parameters()).device
    try:
        logits, scores = probe.motivated_forward(held_out["pixel_values"].to(device))
    finally:
        probe.remove()
    result = score_hit_rates(scores.float().cpu(), held_out["boxes"], regime)
    result["clean_top1"] = float((logits.float().cpu().argmax(-1) == held_out["labels"]).float().mean())
    return result


def score_hit_rates(scores: torch.Tensor, boxes: torch.Tensor, regime: Regime) -> dict[str, float]:
    """The window hit rates for given ``[B, g, g]`` scores and digit boxes, averaged over the regime's sides."""
    digit = token_box_mask(boxes, regime.canvas, regime.grid).float()  # [B, g, g]
    digit_tokens = digit.sum(dim=(1, 2))
    rates: dict[str, list[float]] = {key: [] for name in MEASURES for key in (name, f"{name}_random")}
    rows = torch.arange(scores.shape[0])
    for side in regime.sides:
        inside = digit.unfold(1, side, 1).unfold(2, side, 1).sum(dim=(-1, -2))  # digit tokens per window position
        flat = inside.flatten(1)
        positions = flat.shape[1]
        best = select_windows(scores, (side, side), largest=True)
        worst = select_windows(scores, (side, side), largest=False)
        at_best = flat[rows, best[:, 0] * inside.shape[-1] + best[:, 1]]
        at_worst = flat[rows, worst[:, 0] * inside.shape[-1] + worst[:, 1]]
        cover_random = float((flat.mean(1) / digit_tokens).mean())
        rates["src_hit"].append(float((at_best > 0).float().mean()))
        rates["src_hit_random"].append(float(((flat > 0).float().sum(1) / positions).mean()))
        rates["src_cover"].append(float((at_best / digit_tokens).mean()))
        rates["src_cover_random"].append(cover_random)
        rates["tgt_avoid"].append(float((at_worst == 0).float().mean()))
        rates["tgt_avoid_random"].append(float(((flat == 0).float().sum(1) / positions).mean()))
        rates["tgt_occlude"].append(float((at_worst / digit_tokens).mean()))
        rates["tgt_occlude_random"].append(cover_random)
    return {key: statistics.mean(values) for key, values in rates.items()}


class WindowProbeCallback(TrainerCallback):
    """At every epoch's log (``logging_strategy="epoch"``): the epoch's mean L_cls, then clean top-1 and the
    window hit rates of the model as it stands at that epoch end."""

    def __init__(self, held_out: HeldOut, regime: Regime) -> None:
        self.held_out, self.regime = held_out, regime
        self.history: list[dict[str, float]] = []

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, float] | None = None,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if not logs or "loss" not in logs:
            return
        entry = {"loss_cls": float(logs.get("loss_cls", logs["loss"]))}
        entry.update(window_hit_rates(model, self.held_out, self.regime))
        self.history.append(entry)
