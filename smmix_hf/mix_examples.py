"""``--save_mix_examples N``: PNG grids of the mixed training images, and the same images in TensorBoard.

With ``save_mix_examples > 0`` the trainer keeps a reference to its latest batch of a method that shows
its windows (SMMix, CutMix, TransMix; ``MixMethod.example``), without a copy and without moving anything
off the device, as a :class:`MixExample`. :class:`MixExamplesCallback` renders its
first ``N`` samples with :func:`smmix_hf.visualize.render_mix_grid` whenever the Trainer logs, into
``<output_dir>/mix_examples/step_XXXXXX.png``, and adds the grid to TensorBoard when TensorBoard is
one of the reporters. With the default ``save_mix_examples = 0`` nothing is kept and no callback runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.integrations import TensorBoardCallback

from smmix_hf.losses import consistency_target
from smmix_hf.mixing import MixedBatch, SMMixResult
from smmix_hf.visualize import WINDOW_LEGEND, MixRow, render_mix_grid

__all__ = ["MixExample", "MixExamplesCallback", "to_display_images"]

MIX_EXAMPLES_DIR = "mix_examples"


@dataclass
class MixExample:
    """One mixed batch as training saw it. Corners are in cells of ``cell`` pixels, as is ``region``.

    ``method`` names the method for titles and TensorBoard tags; ``region_labels`` says whether its loss
    labels the window and the rest separately (SMMix's Eq. 10-13), which the grid then shows.
    """

    method: str
    images: torch.Tensor
    mixed: torch.Tensor
    labels: torch.Tensor
    source_index: torch.Tensor
    source_fraction: float
    source_corner: torch.Tensor
    target_corner: torch.Tensor
    region: tuple[int, int]
    cell: tuple[int, int]
    scores: torch.Tensor | None = None
    clean_logits: torch.Tensor | None = None
    consistency_target: str = "logits"
    step: int = 0
    region_labels: bool = False

    @classmethod
    def from_smmix(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor,
        mixed: SMMixResult,
        scores: torch.Tensor | None,
        clean_logits: torch.Tensor | None,
        consistency_target: str = "logits",
        step: int = 0,
        method: str = "SMMix",
    ) -> MixExample:
        """An SMMix batch (Eq. 7-8): windows on the token grid of ``mixed.source_mask``."""
        grid_h, grid_w = mixed.source_mask.shape[1:]
        cell = (images.shape[-2] // grid_h, images.shape[-1] // grid_w)
        return cls(
            method, images, mixed.images, labels, mixed.source_index, mixed.source_fraction,
            mixed.source_corner, mixed.target_corner, mixed.region_size, cell, scores, clean_logits,
            consistency_target, step, region_labels=True,
        )  # fmt: skip

    @classmethod
    def from_cutmix(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor,
        mixed: MixedBatch,
        box: tuple[int, int, int, int],
        step: int = 0,
        scores: torch.Tensor | None = None,
        method: str = "CutMix",
    ) -> MixExample:
        """A CutMix batch: the same pixel box in the source and the target; ``scores`` only for display."""
        top, bottom, left, right = box
        corner = torch.tensor([[top, left]]).expand(images.shape[0], 2)
        return cls(
            method, images, mixed.images, labels, mixed.source_index, mixed.source_fraction,
            corner, corner, (bottom - top, right - left), (1, 1), scores, step=step,
        )  # fmt: skip

    def rows(
        self,
        count: int,
        class_names: dict[int, str] | None = None,
        mean: Any = None,
        std: Any = None,
        loss_weights: dict[str, float] | None = None,
    ) -> list[MixRow]:
        """The first ``count`` samples as :class:`MixRow`; images are de-normalised with ``mean`` / ``std``."""
        count = min(count, self.images.shape[0])
        source_index = self.source_index[:count].to(self.images.device)
        targets = to_display_images(self.images[:count].detach().float().cpu(), mean, std)
        sources = to_display_images(self.images[source_index].detach().float().cpu(), mean, std)
        mixed = to_display_images(self.mixed[:count].detach().float().cpu(), mean, std)
        labels = self.labels.cpu().tolist()
        scores = None if self.scores is None else self.scores.detach().float().cpu().numpy()
        source_corner, target_corner = self.source_corner[:count].cpu(), self.target_corner[:count].cpu()
        source_index = source_index.cpu()
        target_top = self._consistency_top(count, class_names) if self.clean_logits is not None else None
        rows = []
        for i in range(count):
            j = int(source_index[i])
            rows.append(
                MixRow(
                    method=self.method,
                    source=sources[i],
                    target=targets[i],
                    mixed=mixed[i],
                    source_box=self._box(source_corner[i]),
                    target_box=self._box(target_corner[i]),
                    source_label=_name(labels[j], class_names),
                    target_label=_name(labels[i], class_names),
                    source_fraction=float(self.source_fraction),
                    source_scores=None if scores is None else scores[j],
                    target_scores=None if scores is None else scores[i],
                    region_labels=self.region_labels,
                    consistency_top=[] if target_top is None else target_top[i],
                    loss_weights=dict(loss_weights or {}),
                )
            )
        return rows

    def _box(self, corner: torch.Tensor) -> tuple[int, int, int, int]:
        (cell_h, cell_w), (height, width) = self.cell, self.region
        return int(corner[0]) * cell_h, int(corner[1]) * cell_w, height * cell_h, width * cell_w

    def _consistency_top(self, count: int, class_names: dict[int, str] | None) -> list[list[tuple[str, float]]]:
        """Top-2 classes of the consistency target (Eq. 14) of the first ``count`` samples."""
        logits = self.clean_logits.detach().float().cpu()
        full_index = self.source_index.cpu()
        target = consistency_target(logits, full_index, self.source_fraction, self.consistency_target)[:count]
        probs, ids = target.topk(min(2, target.shape[-1]), dim=-1)
        return [
            [(_name(int(c), class_names), float(p)) for p, c in zip(row_p, row_c, strict=True)]
            for row_p, row_c in zip(probs.tolist(), ids.tolist(), strict=True)
        ]


def _name(label: int, class_names: dict[int, str] | None) -> str:
    return str(class_names.get(label, label)) if class_names else str(label)


def to_display_images(images: torch.Tensor, mean: Any = None, std: Any = None) -> list[np.ndarray]:
    """``[B, C, H, W]`` model inputs as ``H×W×3`` uint8 arrays: de-normalised, or min-max scaled per image."""
    if mean is not None and std is not None:
        mean_t = torch.as_tensor(mean, dtype=images.dtype).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=images.dtype).reshape(1, -1, 1, 1)
        pixels = (images * std_t + mean_t).clamp(0, 1)
    else:
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        high = images.amax(dim=(1, 2, 3), keepdim=True)
        pixels = (images - low) / (high - low).clamp_min(1e-12)
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    return [np.ascontiguousarray(image) for image in (pixels[:, :3] * 255).round().byte().permute(0, 2, 3, 1).numpy()]


class MixExamplesCallback(TrainerCallback):
    """Saves a PNG grid of the trainer's latest mixed batch at every logging step (and the last step)."""

    def __init__(self, trainer: Any, count: int) -> None:
        if count < 1:
            raise ValueError(f"save_mix_examples must be >= 1 to save examples; got {count}.")
        self.trainer = trainer
        self.count = count
        self.saved: list[str] = []
        self._last_saved: MixExample | None = None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if control.should_log or control.should_training_stop or state.global_step >= state.max_steps:
            self.save(args, state)

    def save(self, args: TrainingArguments, state: TrainerState) -> str | None:
        """Render and save the latest example (once); returns its path, or None when there is nothing new."""
        example = getattr(self.trainer, "last_mix_example", None)
        if example is None or example is self._last_saved or not state.is_world_process_zero:
            return None
        self._last_saved = example
        processor = getattr(self.trainer, "processing_class", None)
        model = self.trainer.model
        weights = {
            "cls": args.cls_loss_weight,
            "fine": args.fine_loss_weight,
            "con": args.consistency_loss_weight,
        }
        rows = example.rows(
            self.count,
            class_names=getattr(model.config, "id2label", None),
            mean=getattr(processor, "image_mean", None),
            std=getattr(processor, "image_std", None),
            loss_weights=weights if example.region_labels else {"cls": args.cls_loss_weight},
        )
        title = f"step {example.step}: {example.method}   {WINDOW_LEGEND}"
        grid = render_mix_grid(rows, title=title)
        directory = os.path.join(args.output_dir, MIX_EXAMPLES_DIR)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"step_{example.step:06d}.png")
        grid.save(path)
        self.saved.append(path)
        for callback in self.trainer.callback_handler.callbacks:
            if isinstance(callback, TensorBoardCallback) and callback.tb_writer is not None:
                callback.tb_writer.add_image(
                    f"mix_examples/{example.method}", np.asarray(grid), example.step, dataformats="HWC"
                )
        return path
