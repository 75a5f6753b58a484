"""``WindowScorer``: what places SMMix's windows, one public interface for the model's own attention, a frozen
motivator (Tab. 9) or an oracle.

A scorer is called once per SMMix batch, before the mixing, as ``scorer(images, grid)`` and returns

* the clean logits ``[B, C]`` of ``images``, the consistency target of Eq. 14 (they need no gradient);
* the window scores ``[B, gh, gw]`` on the model's token ``grid``: max-min mixing (Eq. 7-8) pastes the window with
  the largest score sum of the source onto the window with the smallest score sum of the target.

:class:`SelfMotivation` is the paper's scorer and the default: the motivated forward of the model under training
(eval mode, no grad), scored by its own last-block attention (Eq. 6). :class:`~smmix_hf.motivator.Motivator` is a
frozen pre-trained model's. A scorer of one's own subclasses :class:`WindowScorer`; to keep the model's clean logits
and change only the scores, wrap the task's scorer::

    class InkScores(WindowScorer):
        def __init__(self, scorer: WindowScorer) -> None:
            self.scorer = scorer

        def __call__(self, images, grid):
            clean_logits, _ = self.scorer(images, grid)
            return clean_logits, F.adaptive_avg_pool2d(images.mean(1, keepdim=True), grid)[:, 0]

    task.scorer = InkScores(task.scorer)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import nn

    from smmix_hf.backbones.probe import SMMixProbe

__all__ = ["SelfMotivation", "WindowScorer", "check_scores"]


class WindowScorer(ABC):
    """Places SMMix's windows: ``scorer(images, grid)`` → ``(clean_logits [B, C], scores [B, gh, gw])``."""

    @abstractmethod
    def __call__(self, images: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean logits of ``images`` and one score per token of the model's ``grid``."""


class SelfMotivation(WindowScorer):
    """The model under training scores its own tokens (the paper's default): one clean forward in eval mode under
    ``no_grad``, through ``module`` (the model, or its DDP / FSDP / compiled wrapper), whose last attention block
    gives the image attention score of each token (Eq. 6)."""

    def __init__(self, probe: SMMixProbe, module: nn.Module) -> None:
        self.probe = probe
        self.module = module

    def __call__(self, images: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.probe.motivated_forward(images, self.module)


def check_scores(
    scorer: WindowScorer, images: torch.Tensor, grid: tuple[int, int], result: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """``result`` of ``scorer`` if it is ``(clean_logits [B, C], scores [B, gh, gw])``; else a one-line error."""
    name = type(scorer).__name__
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(x, torch.Tensor) for x in result)):
        raise TypeError(f"the window scorer {name} must return (clean_logits, scores) tensors; got {type(result)}.")
    clean_logits, scores = result
    batch = images.shape[0]
    if clean_logits.dim() != 2 or clean_logits.shape[0] != batch:
        shape = tuple(clean_logits.shape)
        raise ValueError(f"the window scorer {name} gave clean logits of shape {shape}; expected [{batch}, classes].")
    if tuple(scores.shape) != (batch, *grid):
        raise ValueError(
            f"the window scorer {name} gave scores of shape {tuple(scores.shape)}; expected "
            f"[{batch}, {grid[0]}, {grid[1]}] (one per token of the model's grid)."
        )
    return clean_logits, scores
