"""``SMMixTask``: one SMMix training step, batch → loss, for any training loop.

This module is where SMMix's step lives. One call of :meth:`SMMixTask.forward` on a training batch:

1. **draws** on the host what the batch does (:mod:`smmix_hf.draws`, through the run's
   :class:`~smmix_hf.methods.MixMethod`): SMMix with probability ``mixup_switch_prob``, else Mixup (the DeiT
   recipe), and SMMix's window size (Eq. 7);
2. runs the **motivated forward** (:class:`~smmix_hf.backbones.probe.SMMixProbe`): one clean forward in eval
   mode under ``no_grad``, which gives the image attention score of every token (Eq. 6) and the clean logits;
3. **mixes** (:mod:`smmix_hf.mixing`): the source's most attended window is pasted onto the target's least
   attended window (Eq. 7-8), λ = the source's area share;
4. runs the **mixed forward** with gradients, while the probe pools the final tokens inside and outside the
   pasted window through the model's own head (Eq. 10-11);
5. returns the **losses** (:mod:`smmix_hf.losses`): ``L = L_cls (Eq. 9) + L_fine (Eq. 10-13) + L_con (Eq. 14)``.

The task is a :class:`timm.task.TrainingTask`: an ``nn.Module`` whose ``forward(input, target)`` returns a dict
with ``loss`` and ``output``, so timm's training loop, Lightning's ``training_step``, an ``accelerate`` loop and
:class:`~smmix_hf.SMMixTrainer` all call the same object. It reads no value back from the device, so it adds no
host synchronisation to a step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from timm.task import TrainingTask
from torch import nn

from smmix_hf.backbones.calling import classifier_logits, input_keyword, unwrap_model
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.draws import MixRandom
from smmix_hf.methods import MixSettings, RunPosition, build_mix_method
from smmix_hf.motivator import Motivator

if TYPE_CHECKING:
    from smmix_hf.mix_examples import MixExample

__all__ = ["SMMixTask"]

_UNSET = object()


class SMMixTask(TrainingTask):
    """SMMix (Chen et al., ICCV 2023) as a training task: ``task(images, labels)`` → ``{"loss", "output", ...}``.

    Args:
        model: the image classifier under training: a transformers model (``ViTForImageClassification``,
            ``SwinForImageClassification``, ``TimmWrapperForImageClassification``, …) or a timm model
            (``timm.create_model("deit_small_patch16_224")``). It may already be wrapped (DDP, FSDP,
            ``torch.compile``): the task hooks the model inside and calls the wrapper.
        settings: every knob of the mixing (:class:`~smmix_hf.methods.MixSettings`; the paper's defaults, plus a
            motivation warm-up over the first 25% of the steps). ``None`` takes the defaults, without the
            warm-up when a ``motivator`` places the windows.
        motivator: a frozen pre-trained model (or :class:`~smmix_hf.motivator.Motivator`) whose attention and
            clean logits drive the mixing instead of the model's own (Tab. 9). It stays outside DDP and out of
            the task's parameters and state.
        seed: seeds the draws. In a distributed run give every process the same seed (all take the same kind
            of step together) or ``seed + rank`` for independent draws.
        allow_odd_batch: train on a batch of odd size (a single image included) by pairing its middle sample with
            itself (its own window is pasted onto itself and keeps its label). By default an odd batch is refused,
            as timm's ``Mixup`` does: use an even batch size and ``drop_last=True``.

    In training mode (the model's ``training`` flag) a call is one SMMix step and returns::

        {"loss": L, "output": logits of the mixed images, "loss_cls": …, "loss_fine": …, "loss_con": …}

    with the terms the batch had (a Mixup batch has ``loss_cls`` only). In eval mode it returns plain
    cross-entropy on the clean images: ``{"loss", "output"}``.

    The motivation warm-up and ``mix_off_epoch`` depend on where the run is: call :meth:`set_position` before
    each step. ``task.state_dict()`` holds the model's weights and the draw generators, so loading it resumes
    the draws exactly; :meth:`get_task_state` returns the draws alone (timm's checkpoints keep it beside the
    model's weights).
    """

    def __init__(
        self,
        model: nn.Module,
        settings: MixSettings | None = None,
        motivator: nn.Module | Motivator | None = None,
        *,
        seed: int = 0,
        allow_odd_batch: bool = False,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(device=device, dtype=dtype, verbose=verbose)
        if settings is None:
            settings = MixSettings(motivation_warmup_ratio=0.0) if motivator is not None else MixSettings()
        if not isinstance(settings, MixSettings):
            raise TypeError(
                f"settings must be a smmix_hf.MixSettings; got {type(settings).__name__} "
                "(an SMMixConfig gives one with MixSettings.from_config(config))."
            )
        self.settings = settings
        self.allow_odd_batch = allow_odd_batch
        self.method = build_mix_method(settings, seed)
        self.trainable_module = model
        if settings.region_head == "separate" and self.model is not model:
            raise ValueError(
                "region_head='separate' registers a head on the model; build the SMMixTask before wrapping the "
                "model (DDP, FSDP, torch.compile, accelerator.prepare), then wrap it with task.wrap(wrapped)."
            )
        self.probe = self._probe_for(self.model)
        self.input_keyword = input_keyword(self.model)
        self.motivator = self._motivator_for(motivator)
        self.position: RunPosition | object | None = _UNSET
        self.keep_mix_examples = False
        self.last_mix_example: MixExample | None = None
        self.last_method: str | None = None

    # ---- the model and the loop around it ----

    @property
    def model(self) -> nn.Module:
        """The model under training, outside any wrapper (the one the probe's hooks sit on)."""
        return unwrap_model(self.trainable_module)

    def wrap(self, wrapped: nn.Module) -> SMMixTask:
        """Call ``wrapped`` (this task's model inside DDP / FSDP / ``torch.compile``) for the forwards from now on.

        The hooks stay on the model inside; the forwards go through the wrapper, which FSDP needs to gather the
        parameters. Returns the task.
        """
        if unwrap_model(wrapped) is not self.model:
            raise ValueError("task.wrap(module) takes the task's own model inside a wrapper; got another model.")
        self.trainable_module = wrapped
        return self

    def prepare_distributed(self, device_ids: list | None = None, **ddp_kwargs: Any) -> SMMixTask:
        """Wraps the model under training in DDP; a motivator stays outside it (it is never trained)."""
        from torch.nn.parallel import DistributedDataParallel

        return self.wrap(DistributedDataParallel(self.trainable_module, device_ids=device_ids, **ddp_kwargs))

    def compile(self, backend: str = "inductor", mode: str | None = None, **compile_kwargs: Any) -> nn.Module:
        """Compiles the model under training (before DDP wrapping); the hooks stay on the model inside."""
        self.trainable_module = torch.compile(self.trainable_module, backend=backend, mode=mode, **compile_kwargs)
        return self.trainable_module

    def set_position(self, epoch: float, progress: float, step: int = 0) -> None:
        """Where the next training batch is in its run: ``epoch`` (fractional, e.g. ``epoch + i / len(loader)``),
        ``progress`` (the share of the run's optimizer steps done, in [0, 1]) and its ``step`` number (for the
        saved mix examples). The motivation warm-up reads ``progress`` (or ``epoch`` with
        ``motivation_warmup_epochs``) and ``mix_off_epoch`` reads ``epoch``."""
        if not (math.isfinite(epoch) and epoch >= 0):
            raise ValueError(f"set_position: epoch must be a finite number >= 0; got {epoch}.")
        if not (math.isfinite(progress) and 0.0 <= progress <= 1.0):
            raise ValueError(f"set_position: progress is the share of the run's steps done, in [0, 1]; got {progress}.")
        self.position = RunPosition(float(epoch), float(progress), int(step))

    @property
    def needs_position(self) -> bool:
        """Whether a training step needs :meth:`set_position` (a motivation warm-up or ``mix_off_epoch``)."""
        settings = self.settings
        warmup = settings.motivation_warmup_epochs > 0 or settings.motivation_warmup_ratio > 0
        return (warmup and self.probe is not None) or settings.mix_off_epoch is not None

    # ---- the step ----

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """One SMMix step on ``input`` images ``[B, C, H, W]`` with integer class ``target`` ``[B]`` (training
        mode), or clean cross-entropy (eval mode)."""
        images, labels = input, target
        self._check_batch(images, labels)
        if not self.model.training:
            logits = classifier_logits(self.trainable_module, images, self.input_keyword)
            return {"loss": F.cross_entropy(logits.float(), labels), "output": logits}

        position = self._position()
        image_size = (images.shape[-2], images.shape[-1])
        grid = self.probe.token_grid(image_size) if self.probe is not None else None
        draw = self.method.draw(image_size, grid, position)
        method = draw.method
        clean_logits = scores = None
        if draw.needs_clean_forward:
            clean_logits, scores = self._motivated_forward(images)
        mixed = method.mix(images, draw, clean_logits, scores)
        if self.keep_mix_examples:  # methods that do not show their windows keep the latest example
            step = position.step if position is not None else 0
            example = method.example(images, labels, mixed, clean_logits, scores, step)
            self.last_mix_example = example or self.last_mix_example
        with method.mixed_forward(self.probe, mixed):
            logits = classifier_logits(self.trainable_module, mixed.images, self.input_keyword)
        terms = method.losses(logits, labels, mixed, clean_logits, self.probe)
        self.last_method = method.name
        return {"loss": method.weighted_loss(terms), "output": logits, **terms}

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """The names of every loss term a batch of this run can return (``loss_cls``, ``loss_fine``, ``loss_con``)."""
        return self.method.loss_terms

    def _motivated_forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean no-grad forward in eval mode: clean logits and the image attention scores (Eq. 6).

        With a motivator (Tab. 9) the frozen motivator runs instead; its scores are resampled to the model's grid.
        """
        if self.motivator is not None:
            return self.motivator(images, self.probe.token_grid((images.shape[-2], images.shape[-1])))
        return self.probe.motivated_forward(images, self.trainable_module)

    def _position(self) -> RunPosition | None:
        if self.position is _UNSET:
            if self.needs_position:
                raise ValueError(
                    "SMMixTask needs the run's position for the motivation warm-up / mix_off_epoch: call "
                    "task.set_position(epoch, progress) before each training step (or set motivation_warmup_ratio=0 "
                    "for the paper's schedule without a warm-up)."
                )
            return None
        return self.position  # type: ignore[return-value]

    def _check_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Refuse, in one line, a batch the step cannot train on (shapes and dtypes only: no device read)."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"SMMixTask takes images as one [batch, channels, height, width] tensor; got {shape}.")
        if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.is_floating_point():
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            kind = "soft (floating-point) targets" if isinstance(labels, torch.Tensor) else "labels"
            raise ValueError(
                f"SMMixTask takes hard integer class labels [batch]; got {kind} of shape {shape}. SMMix builds the "
                "soft targets itself: remove Mixup/CutMix (timm's mixup_fn, torchvision's v2.CutMix) from the "
                "data pipeline and pass the class indices."
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"SMMixTask got {images.shape[0]} images but {labels.shape[0]} labels.")
        batch = images.shape[0]
        too_small = batch % 2 or batch < 2
        if self.model.training and self.method.pairs_images and too_small and not self.allow_odd_batch:
            raise ValueError(
                f"{self.settings.mix_method} pairs every image with another one of its batch, so a training batch "
                f"must be even and >= 2; got {batch}. Use an even batch size and drop_last=True in the DataLoader "
                "(or SMMixTask(..., allow_odd_batch=True) to pair an odd batch's middle image with itself)."
            )

    # ---- setting up ----

    def _probe_for(self, model: nn.Module) -> SMMixProbe | None:
        """The model's probe, once the method accepts the model (it refuses e.g. a 1-token grid)."""
        if not self.method.needs_probe:
            return None
        probe = SMMixProbe(model, self.settings.region_head == "separate")
        try:
            self.method.check_model(probe, probe.backbone.declared_image_size())
        except ValueError:
            probe.remove()
            raise
        return probe

    def _motivator_for(self, motivator: nn.Module | Motivator | None) -> Motivator | None:
        """The frozen motivator on the model's device and dtype, or None for self-motivated SMMix."""
        if motivator is None:
            return None
        if not self.method.accepts_motivator:
            raise ValueError(f"a motivator drives SMMix only; got mix_method={self.settings.mix_method!r}.")
        motivator = motivator if isinstance(motivator, Motivator) else Motivator(motivator)
        motivator.check_student(self.model, uses_clean_logits=self.settings.consistency_loss_weight > 0)
        parameter = next(self.model.parameters())
        return motivator.to(parameter.device, dtype=parameter.dtype)

    def remove_hooks(self) -> None:
        """Detach the probe's hooks from the model (the task cannot train afterwards)."""
        if self.probe is not None:
            self.probe.remove()

    # ---- checkpoints: the draws resume exactly ----

    @property
    def draws(self) -> MixRandom:
        """The run's draw generators (``state_dict`` / ``load_state_dict``), e.g. for
        ``accelerator.register_for_checkpointing(task.draws)``; ``task.state_dict()`` holds them too."""
        return self.method.random

    def get_extra_state(self) -> dict[str, Any]:
        """The draw generators, saved in ``task.state_dict()`` beside the model's weights."""
        return self.method.state_dict()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state)

    def get_task_state(self, module: nn.Module | None = None, ema: bool = False) -> dict[str, Any]:
        """timm's checkpoint hook: the draw generators (timm saves them as ``task_state``)."""
        return {} if ema else {"smmix_draws": self.method.state_dict()}

    def load_task_state(
        self, state: dict[str, Any] | None, strict: bool = True, module: nn.Module | None = None, ema: bool = False
    ) -> None:
        if ema:
            return
        if state is None or "smmix_draws" not in state:
            if strict:
                raise KeyError("the checkpoint's task_state has no smmix_draws; the draws cannot resume exactly.")
            return
        self.method.load_state_dict(state["smmix_draws"])
