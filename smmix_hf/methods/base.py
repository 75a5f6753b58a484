"""The ``MixMethod`` interface: what a mixing method needs from the model, how it draws its randomness,
how it mixes a batch and which loss terms it adds.

A training step, as :class:`~smmix_hf.task.SMMixTask` runs it (the analysis tools run the first three
steps with the same objects)::

    draw = switch.draw(image_size, grid, RunPosition(epoch, progress))  # host-side draws
    method = draw.method                                 # the method that mixes this batch
    clean_logits, scores = motivated_forward(images) if draw.needs_clean_forward else (None, None)
    mixed = method.mix(images, draw, clean_logits, scores)
    with method.mixed_forward(probe, mixed):             # hooks that read the mixed forward (Eq. 10-11, TransMix)
        logits = model(mixed.images)
    loss = method.weighted_loss(method.losses(logits, labels, mixed, clean_logits, probe))

Method names live only in the registry (:mod:`smmix_hf.methods`), which gives every method object its
``name``; callers read attributes (``needs_probe``, ``loss_terms``, a draw's ``needs_clean_forward``) instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from smmix_hf.draws import MixRandom
from smmix_hf.settings import DEFAULT_MOTIVATION_WARMUP_RATIO, MixSettings

if TYPE_CHECKING:
    from smmix_hf.backbones.probe import SMMixProbe
    from smmix_hf.mix_examples import MixExample
    from smmix_hf.mixing import MixedBatch, SMMixResult

__all__ = [
    "DEFAULT_MOTIVATION_WARMUP_RATIO",
    "LabelReweighting",
    "MixDraw",
    "MixMethod",
    "MixSettings",
    "Mixed",
    "RunPosition",
]


@dataclass(frozen=True)
class RunPosition:
    """Where a training batch is in its run: the fractional ``epoch`` and ``progress``, the share of the run's
    optimizer steps done (``global_step / max_steps``), and the ``step`` number of the batch (for saved mix
    examples). Batches drawn outside a training run have none."""

    epoch: float
    progress: float
    step: int = 0

    @classmethod
    def of(cls, state: Any) -> RunPosition | None:
        """The position of the next batch of a ``transformers.TrainerState``; None outside ``train()``."""
        if not state.max_steps:
            return None
        return cls(state.epoch or 0.0, state.global_step / state.max_steps, state.global_step + 1)


@dataclass(frozen=True)
class MixDraw:
    """What one batch does: ``method`` (the method object that mixes it, e.g. SMMix or the DeiT switch's Mixup)
    and its draws.

    ``region_size`` is SMMix's window ``(h, w)`` in tokens on ``grid_size``; ``box`` is CutMix's
    ``(top, bottom, left, right)`` in pixels; ``source_fraction`` is Mixup's blend weight.
    ``needs_clean_forward``: the batch needs the motivated forward's clean logits / image attention scores
    (Eq. 6). ``motivation_warmup``: an SMMix batch of the motivation warm-up (random windows, no L_con).
    """

    method: MixMethod = field(compare=False, repr=False)
    region_size: tuple[int, int] | None = None
    box: tuple[int, int, int, int] | None = None
    source_fraction: float | None = None
    grid_size: tuple[int, int] | None = None
    needs_clean_forward: bool = False
    motivation_warmup: bool = False


@dataclass(frozen=True)
class Mixed:
    """A mixed batch: sample ``i`` took its source from ``source_index[i]``.

    ``source_fraction`` is the paper's λ (Eq. 9): the source's area share, or Mixup's blend weight.
    ``source_mask`` (bool ``[B, gh, gw]``) marks the tokens that came from the source, for methods whose
    losses read the window (Eq. 10-13, TransMix). ``result`` is :mod:`smmix_hf.mixing`'s own result.
    """

    images: torch.Tensor
    source_index: torch.Tensor
    source_fraction: float
    draw: MixDraw
    source_mask: torch.Tensor | None = None
    result: SMMixResult | MixedBatch | None = None


class LabelReweighting(ABC):
    """Re-weights the mixed label of a window method per sample: λ of Eq. 9 becomes ``λ_i`` (e.g. TransMix)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def check_model(self, probe: SMMixProbe | None) -> None:
        """Raise a one-line ``ValueError`` before training when the model cannot supply what it reads."""

    @abstractmethod
    def mixed_forward(self, probe: SMMixProbe, image_size: tuple[int, int]) -> AbstractContextManager[Any]:
        """Hooks that read what the re-weighting needs during the mixed forward of ``image_size`` images."""

    @abstractmethod
    def source_fraction(self, area_fraction: float, source_mask: torch.Tensor, probe: SMMixProbe) -> torch.Tensor:
        """The source label's weight ``[B, 1]`` for the window ``source_mask`` (bool ``[B, gh, gw]``)."""


class MixMethod(ABC):
    """One way of mixing a training batch.

    Subclasses set what they need from the model (:attr:`needs_probe`; each draw says whether its batch
    needs the motivated forward), draw with the shared :class:`~smmix_hf.draws.MixRandom` (checkpointed
    through :meth:`state_dict`), mix (:meth:`mix`), hook the mixed forward (:meth:`mixed_forward`) and
    compute their loss terms (:meth:`losses`), weighted by :attr:`weights`. Methods that paste a window
    (:attr:`pastes_window`) accept a :class:`LabelReweighting` of their mixed label.
    """

    pairs_images: ClassVar[bool] = True
    """Whether the method pairs every image with another one of its device batch (needs an even batch)."""
    pastes_window: ClassVar[bool] = False
    """Whether the source's contribution is a window, so that a label re-weighting can read it."""
    accepts_motivator: ClassVar[bool] = False
    """Whether a frozen motivator (Tab. 9) can supply the clean forward."""

    def __init__(
        self, name: str, settings: MixSettings, random: MixRandom, reweighting: LabelReweighting | None = None
    ) -> None:
        if reweighting is not None and not self.pastes_window:
            raise ValueError(
                f"label_reweighting={reweighting.name} re-weights the label of a pasted window, which "
                f"mix_method={name} does not paste; choose a method that pastes a window."
            )
        self.name = name
        self.settings = settings
        self.random = random
        self.reweighting = reweighting

    # ---- what it needs from the model ----

    @property
    def needs_probe(self) -> bool:
        """Whether it reads the model under training through its probe (token grid, attention, tokens)."""
        return False

    def check_model(self, probe: SMMixProbe | None, image_size: tuple[int, int] | None) -> None:
        """Raise a one-line ``ValueError`` before training when the model cannot be trained this way."""
        return None

    # ---- its randomness ----

    @abstractmethod
    def draw(self, image_size: tuple[int, int], grid: tuple[int, int] | None, at: RunPosition | None = None) -> MixDraw:
        """This batch's draws for images of ``image_size`` pixels on a ``grid`` of tokens (None without probe),
        ``at`` a position in a training run (None outside one)."""

    def state_dict(self) -> dict[str, Any]:
        return self.random.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.random.load_state_dict(state)

    # ---- mixing ----

    @abstractmethod
    def mix(
        self,
        images: torch.Tensor,
        draw: MixDraw,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
    ) -> Mixed:
        """The mixed batch; ``clean_logits`` / ``scores`` come from the motivated forward when needed."""

    def mixed_forward(self, probe: SMMixProbe | None, mixed: Mixed) -> AbstractContextManager[Any]:
        """Hooks around the forward of ``mixed.images`` (none by default)."""
        return nullcontext()

    # ---- the loss ----

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """The names of the terms :meth:`losses` returns (and the trainer logs)."""
        return ("loss_cls",)

    @property
    def weights(self) -> dict[str, float]:
        return {"loss_cls": self.settings.cls_loss_weight}

    @abstractmethod
    def losses(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        probe: SMMixProbe | None = None,
    ) -> dict[str, torch.Tensor]:
        """The unweighted loss terms of the mixed forward's ``logits``."""

    def weighted_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """``Σ weight·term`` in the order of ``terms``."""
        loss: torch.Tensor | None = None
        for name, value in terms.items():
            weighted = self.weights[name] * value
            loss = weighted if loss is None else loss + weighted
        if loss is None:
            raise ValueError(f"{self.name} returned no loss terms.")
        return loss

    # ---- reporting ----

    def example(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mixed: Mixed,
        clean_logits: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
        step: int = 0,
    ) -> MixExample | None:
        """The batch as a :class:`~smmix_hf.mix_examples.MixExample` for PNG grids, or None (not shown)."""
        return None

    def recipe(self) -> dict[str, object]:
        """The settings of this method that define a run's recipe (model card)."""
        return {}
