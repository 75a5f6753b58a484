"""SMMix with oracle windows: scores from the digit's own ink instead of the model's attention.

On the canvas digits the object is the only bright thing: the digit is combined with the noise by a
per-pixel maximum, and the noise stays below ``noise`` × 255. So the mean intensity of a token's patch
is an oracle score that the random resized crop cannot fool (it is read from the very pixels the
model sees). With it, the max window of Eq. 6's selection holds as much of the source digit as a
window of that size can, and the min window avoids the target digit whenever the canvas allows.

:class:`InkOracle` is a :class:`smmix_hf.WindowScorer` that wraps the task's own scorer: it keeps
everything else of SMMix (the eval-mode clean forward for L_con's clean logits, the losses, the Mixup
switch) and swaps only the scores. Comparing it with attention SMMix and with random windows tells how
much of SMMix's result at this scale is due to where its attention points, and how much to the method
around it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from smmix_hf import SMMixTask, WindowScorer


def ink_scores(images: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``[B, gh, gw]``: mean pixel value of each token's patch, channels averaged (normalisation is monotone)."""
    return F.adaptive_avg_pool2d(images.float().mean(dim=1, keepdim=True), grid)[:, 0]


class InkOracle(WindowScorer):
    """Window scores from :func:`ink_scores`; the clean logits still come from ``scorer`` (the model's own)."""

    def __init__(self, scorer: WindowScorer) -> None:
        self.scorer = scorer

    def __call__(self, images: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        clean_logits, _ = self.scorer(images, grid)
        return clean_logits, ink_scores(images, grid).to(clean_logits.device)


def use_ink_oracle(task: SMMixTask) -> SMMixTask:
    """Places ``task``'s windows by ink from now on (its clean logits stay the model's); returns the task."""
    task.scorer = InkOracle(task.scorer)
    return task
