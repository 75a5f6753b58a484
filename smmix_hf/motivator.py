"""A frozen pre-trained motivator: another model's attention and clean logits drive SMMix (Tab. 9).

By default SMMix is self-motivated: the model under training scores its own tokens (Eq. 6) and its
own clean logits form the consistency target (Eq. 14). Tab. 9 of the paper shows that a larger
pre-trained model can take that role (DeiT-S guiding DeiT-T: 74.1 vs 73.6 top-1). A
:class:`Motivator` wraps such a model:

* it is frozen: ``eval()`` mode, ``requires_grad`` False, never part of the student, so it is never in
  the optimizer, never receives gradients, is never wrapped by DDP / FSDP and is not saved with the
  student's checkpoints;
* it may have another architecture, patch size or input size. Its images are resized (bilinear,
  antialiased) when its configuration fixes an input size other than the student's, and its score
  grid is resampled to the student's token grid by **adaptive average pooling**: each student token
  receives the mean score of the motivator tokens its area covers (when the motivator's grid is
  coarser, a motivator token's score is repeated over the student tokens inside it). Window sums
  (Eq. 7-8) then compare the same image regions the motivator attended to;
* its clean logits serve the consistency target of Eq. 14, so its classes must be the student's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForImageClassification

from smmix_hf.backbones.names import resolve_model_name
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.scorer import WindowScorer

__all__ = ["Motivator", "load_motivator", "num_classes_of", "resample_score_grid"]


def resample_score_grid(scores: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``[B, h, w]`` scores on the student's ``grid`` ``[B, gh, gw]`` by adaptive average pooling."""
    if scores.dim() != 3:
        raise ValueError(f"scores must be [B, h, w]; got shape {tuple(scores.shape)}.")
    if tuple(scores.shape[1:]) == tuple(grid):
        return scores
    return F.adaptive_avg_pool2d(scores[:, None].float(), grid)[:, 0]


class Motivator(WindowScorer):
    """A frozen model that gives SMMix its image attention scores and clean logits (a
    :class:`~smmix_hf.scorer.WindowScorer`).

    Example::

        motivator = Motivator(AutoModelForImageClassification.from_pretrained("outputs/deit-s"))
        trainer = SMMixTrainer(model=student, args=args, motivator=motivator, ...)
    """

    def __init__(self, model: nn.Module) -> None:
        if isinstance(model, Motivator):
            raise TypeError("model is already a Motivator; pass it to the trainer as it is.")
        self.model = model
        self.model.eval()
        self.model.requires_grad_(False)
        self.probe = SMMixProbe(model)
        self.input_size = self.probe.backbone.fixed_input_size()

    @property
    def num_labels(self) -> int:
        return num_classes_of(self.model)

    def check_student(self, student: nn.Module, uses_clean_logits: bool) -> None:
        """Raise a one-line error when the motivator cannot motivate ``student``."""
        if student is self.model:
            raise ValueError("the motivator is the model under training; leave it out for self-motivated SMMix.")
        if not uses_clean_logits:
            return
        classes = num_classes_of(student)
        if self.num_labels != classes:
            raise ValueError(
                f"the motivator predicts {self.num_labels} classes but the model under training has {classes}; its "
                "clean logits form the consistency target (Eq. 14), so use a motivator trained on the same labels "
                "or set consistency_loss_weight=0."
            )
        if not (hasattr(self.model, "config") and hasattr(student, "config")):
            return  # a timm model carries no label names to compare
        ours, theirs = self.model.config.id2label, student.config.id2label
        default = {index: f"LABEL_{index}" for index in range(classes)}
        if ours != theirs and default not in (ours, theirs):
            raise ValueError(
                "the motivator's labels differ from the student's (config.id2label); the consistency target "
                "(Eq. 14) needs the same class order."
            )

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Motivator:
        """Move the frozen model to the student's device and dtype."""
        self.model.to(device=device, dtype=dtype)
        return self

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean logits ``[B, C]`` and scores ``[B, gh, gw]`` on the student's ``grid`` for ``images``."""
        parameter = next(self.model.parameters())
        if parameter.device != images.device:
            self.model.to(images.device)
        inputs = images.to(parameter.dtype)
        if self.input_size is not None and tuple(inputs.shape[-2:]) != self.input_size:
            inputs = F.interpolate(inputs, size=self.input_size, mode="bilinear", antialias=True, align_corners=False)
        logits, scores = self.probe.motivated_forward(inputs)
        return logits, resample_score_grid(scores, grid)


def num_classes_of(model: nn.Module) -> int:
    """The number of classes a classifier predicts: transformers' ``config.num_labels`` or timm's ``num_classes``."""
    config = getattr(model, "config", None)
    return int(config.num_labels if config is not None else model.num_classes)


def load_motivator(model_name_or_path: str, **hub_kwargs: object) -> Motivator:
    """A :class:`Motivator` from a local directory, a Hub id or a short name (``deit-small``)."""
    model = AutoModelForImageClassification.from_pretrained(resolve_model_name(model_name_or_path), **hub_kwargs)
    return Motivator(model)
