"""``SMMixTask``: one SMMix training step, batch → loss, for any training loop.

This module is where SMMix's step lives. One call of :meth:`SMMixTask.forward` on a training batch:

1. **draws** on the host what the batch does (:mod:`smmix_hf.draws`, through the run's
   :class:`~smmix_hf.methods.MixMethod`): SMMix with probability ``mixup_switch_prob``, else Mixup (the DeiT
   recipe), and SMMix's window size (Eq. 7);
2. asks its **window scorer** (:class:`~smmix_hf.scorer.WindowScorer`) for the clean logits and a score per token.
   By default that is the **motivated forward** (:class:`~smmix_hf.scorer.SelfMotivation`): one clean forward of
   the model in eval mode under ``no_grad``, which gives the image attention score of every token (Eq. 6);
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
from smmix_hf.clock import StepClock
from smmix_hf.draws import MixRandom
from smmix_hf.methods import MixSettings, RunPosition, build_mix_method
from smmix_hf.motivator import Motivator
from smmix_hf.scorer import SelfMotivation, WindowScorer, check_scores

if TYPE_CHECKING:
    from smmix_hf.mix_examples import MixExample

__all__ = ["SMMixTask"]


class SMMixTask(TrainingTask):
    """SMMix (Chen et al., ICCV 2023) as a training task: ``task(images, labels)`` → ``{"loss", "output", ...}``.

    Args:
        model: the image classifier under training: a transformers model (``ViTForImageClassification``,
            ``SwinForImageClassification``, ``TimmWrapperForImageClassification``, …) or a timm model
            (``timm.create_model("deit_small_patch16_224")``). It may already be wrapped (DDP, FSDP,
            ``torch.compile``): the task hooks the model inside and calls the wrapper.
        settings: every knob of the mixing (:class:`~smmix_hf.methods.MixSettings`; the paper's defaults, plus a
            motivation warm-up over the first 25% of the steps). ``None`` takes the defaults. A warm-up left at
            its default is none when a ``motivator`` or ``scorer`` places the windows.
        motivator: a frozen pre-trained model (or :class:`~smmix_hf.motivator.Motivator`) whose attention and
            clean logits drive the mixing instead of the model's own (Tab. 9). It stays outside DDP and out of
            the task's parameters and state.
        scorer: any other :class:`~smmix_hf.scorer.WindowScorer` that places the windows instead of the model's own
            attention, ``scorer(images, grid) -> (clean_logits, scores)`` (an oracle, a saliency model). Give a
            ``motivator`` or a ``scorer``, not both; :attr:`scorer` is the one in use, and can be replaced (wrapped)
            after the task is built.
        total_steps: the run's optimizer steps (the Trainer's ``max_steps``, Lightning's
            ``estimated_stepping_batches``, a scheduler's total). The motivation warm-up by ratio needs it.
        steps_per_epoch: the training calls (batches) per epoch, ``len(loader)``. ``mix_off_epoch`` and
            ``motivation_warmup_epochs`` need it.
        accumulation_steps: the calls per optimizer step under gradient accumulation (1 without).
        seed: seeds the draws. In a distributed run give every process the same seed (all take the same kind
            of step together) or ``seed + rank`` for independent draws.
        allow_odd_batch: train on a batch of odd size (a single image included) by pairing its middle sample with
            itself (its own window is pasted onto itself and keeps its label). By default an odd batch is refused,
            as timm's ``Mixup`` does: use an even batch size and ``drop_last=True``.

    In training mode (the model's ``training`` flag) a call is one SMMix step and returns::

        {"loss": L, "output": logits of the mixed images, "loss_cls": …, "loss_fine": …, "loss_con": …}

    with the terms the batch had (a Mixup batch has ``loss_cls`` only). In eval mode it returns plain
    cross-entropy on the clean images: ``{"loss", "output"}``.

    The motivation warm-up and ``mix_off_epoch`` depend on where the run is. The task counts its own training
    calls (:attr:`clock`, a :class:`~smmix_hf.clock.StepClock`): a call is one batch (a micro-batch under gradient
    accumulation), its epoch is the calls done over ``steps_per_epoch`` and its progress the optimizer steps done
    over ``total_steps``, as the Trainer counts them. A loop that knows better says so with :meth:`set_position`.
    ``task.state_dict()`` holds the model's weights, the draw generators and the count, so loading it resumes the
    draws and the schedule exactly; :meth:`get_task_state` returns the draws and the count (timm's checkpoints keep
    it beside the model's weights).
    """

    def __init__(
        self,
        model: nn.Module,
        settings: MixSettings | None = None,
        motivator: nn.Module | Motivator | None = None,
        *,
        scorer: WindowScorer | None = None,
        total_steps: int | None = None,
        steps_per_epoch: int | None = None,
        accumulation_steps: int = 1,
        seed: int = 0,
        allow_odd_batch: bool = False,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(device=device, dtype=dtype, verbose=verbose)
        if motivator is not None and scorer is not None:
            raise ValueError("give SMMixTask a motivator or a scorer, not both (a Motivator is a WindowScorer).")
        settings = settings if settings is not None else MixSettings()
        if not isinstance(settings, MixSettings):
            raise TypeError(
                f"settings must be a smmix_hf.MixSettings; got {type(settings).__name__} "
                "(an SMMixConfig gives one with MixSettings.from_config(config))."
            )
        # The warm-up left at its default is none when a motivator or scorer places the windows (Tab. 9).
        settings = settings.resolve(motivator_given=motivator is not None or scorer is not None)
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
        self.self_motivation = SelfMotivation(self.probe, model) if self.probe is not None else None
        self._scorer: WindowScorer | None = None
        self.scorer = next((one for one in (scorer, self.motivator, self.self_motivation) if one is not None), None)
        self.clock = StepClock(total_steps, steps_per_epoch, accumulation_steps)
        self._told: dict[str, float] = {}
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
        self._set_trainable(wrapped)
        return self

    def prepare_distributed(self, device_ids: list | None = None, **ddp_kwargs: Any) -> SMMixTask:
        """Wraps the model under training in DDP; a motivator stays outside it (it is never trained)."""
        from torch.nn.parallel import DistributedDataParallel

        return self.wrap(DistributedDataParallel(self.trainable_module, device_ids=device_ids, **ddp_kwargs))

    def compile(self, backend: str = "inductor", mode: str | None = None, **compile_kwargs: Any) -> nn.Module:
        """Compiles the model under training (before DDP wrapping); the hooks stay on the model inside."""
        self._set_trainable(torch.compile(self.trainable_module, backend=backend, mode=mode, **compile_kwargs))
        return self.trainable_module

    def _set_trainable(self, module: nn.Module) -> None:
        self.trainable_module = module
        if self.self_motivation is not None:  # the motivated forward goes through the wrapper too
            self.self_motivation.module = module

    @property
    def scorer(self) -> WindowScorer | None:
        """What places the windows (:class:`~smmix_hf.scorer.WindowScorer`): the model's own attention
        (:attr:`self_motivation`), the motivator, or a scorer given to the task. Assign another to replace it, e.g.
        one that wraps this one and keeps its clean logits."""
        return self._scorer

    @scorer.setter
    def scorer(self, scorer: WindowScorer | None) -> None:
        if scorer is not None and scorer is not self.self_motivation:
            if not isinstance(scorer, WindowScorer):
                raise TypeError(
                    f"a scorer is a smmix_hf.WindowScorer, called as scorer(images, grid) -> (clean_logits, scores); "
                    f"got {type(scorer).__name__} (a frozen model goes in as motivator=)."
                )
            if not self.method.accepts_motivator:
                raise ValueError(f"a window scorer drives SMMix only; got mix_method={self.settings.mix_method!r}.")
        self._scorer = scorer

    def set_run_length(
        self, total_steps: int | None = None, steps_per_epoch: int | None = None, accumulation_steps: int | None = None
    ) -> None:
        """The run's length, for a loop that learns it after building the task (Lightning's ``on_fit_start``):
        ``total_steps`` optimizer steps, ``steps_per_epoch`` calls per epoch, ``accumulation_steps`` calls per
        optimizer step. A length left out stays as it was; the count of calls done stays."""
        self.clock.set_run_length(total_steps, steps_per_epoch, accumulation_steps)

    def set_position(
        self,
        *,
        epoch: float | None = None,
        progress: float | None = None,
        step: int | None = None,
        outside_run: bool = False,
    ) -> None:
        """Tells the task where its next training call is, for a loop that counts the run itself (a schedule in
        epochs, gradient accumulation of its own kind): ``epoch`` (fractional, e.g. ``epoch + i / len(loader)``),
        ``progress`` (the share of the run's optimizer steps done, in [0, 1]) or ``step`` (the number saved mix
        examples carry). A value told is used until it is told again; what is not told comes from the task's own
        count (:attr:`clock`). ``outside_run=True`` says that the calls are outside a training run (a Trainer's
        ``compute_loss`` before ``train()``): no warm-up and no ``mix_off_epoch`` until a position is told again."""
        if outside_run:
            self._told = {"outside_run": True}
            return
        self._told.pop("outside_run", None)
        if epoch is not None:
            if not (math.isfinite(epoch) and epoch >= 0):
                raise ValueError(f"set_position: epoch must be a finite number >= 0; got {epoch}.")
            self._told["epoch"] = float(epoch)
        if progress is not None:
            if not (math.isfinite(progress) and 0.0 <= progress <= 1.0):
                raise ValueError(
                    f"set_position: progress is the share of the run's steps done, in [0, 1]; got {progress}."
                )
            self._told["progress"] = float(progress)
        if step is not None:
            self._told["step"] = int(step)

    @property
    def position(self) -> RunPosition | None:
        """Where the next training call is: ``epoch`` and ``progress`` (0.0 where the task cannot know them and its
        settings do not read them) and ``step``, the call's number from 1; None outside a training run."""
        if "outside_run" in self._told:
            return None
        epoch = self._told.get("epoch", self.clock.epoch)
        progress = self._told.get("progress", self.clock.progress)
        step = self._told.get("step", self.clock.calls + 1)
        return RunPosition(epoch or 0.0, progress or 0.0, int(step))

    # ---- the step ----

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """One SMMix step on ``input`` images ``[B, C, H, W]`` with integer class ``target`` ``[B]`` (training
        mode), or clean cross-entropy (eval mode)."""
        images, labels = input, target
        self._check_batch(images, labels)
        if not self.model.training:
            logits = classifier_logits(self.trainable_module, images, self.input_keyword)
            return {"loss": F.cross_entropy(logits.float(), labels), "output": logits}

        position = self._checked_position()
        image_size = (images.shape[-2], images.shape[-1])
        grid = self.probe.token_grid(image_size) if self.probe is not None else None
        draw = self.method.draw(image_size, grid, position)
        method = draw.method
        clean_logits = scores = None
        if draw.needs_clean_forward:
            clean_logits, scores = self._motivated_forward(images, grid)
        mixed = method.mix(images, draw, clean_logits, scores)
        if self.keep_mix_examples:  # methods that do not show their windows keep the latest example
            step = position.step if position is not None else self.clock.calls + 1
            example = method.example(images, labels, mixed, clean_logits, scores, step)
            self.last_mix_example = example or self.last_mix_example
        with method.mixed_forward(self.probe, mixed):
            logits = classifier_logits(self.trainable_module, mixed.images, self.input_keyword)
        terms = method.losses(logits, labels, mixed, clean_logits, self.probe)
        self.last_method = method.name
        self.clock.tick()
        return {"loss": method.weighted_loss(terms), "output": logits, **terms}

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """The names of every loss term a batch of this run can return (``loss_cls``, ``loss_fine``, ``loss_con``)."""
        return self.method.loss_terms

    def _motivated_forward(self, images: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean logits and window scores of ``images`` from :attr:`scorer` (by default the model's own
        motivated forward: eval mode, ``no_grad``, Eq. 6)."""
        return check_scores(self.scorer, images, grid, self.scorer(images, grid))

    def _checked_position(self) -> RunPosition | None:
        """The next call's position, once it holds what the settings read; else a one-line error naming the ways
        to give it. None outside a training run."""
        settings, position = self.settings, self.position
        if position is None:
            return None
        warmup = self.probe is not None and (
            settings.motivation_warmup_epochs > 0 or settings.motivation_warmup_ratio > 0
        )
        reads_epoch = (warmup and settings.motivation_warmup_epochs > 0) or settings.mix_off_epoch is not None
        reads_progress = warmup and settings.motivation_warmup_epochs <= 0
        if reads_progress and "progress" not in self._told and self.clock.total_steps is None:
            raise ValueError(
                f"SMMixTask needs the run's length for the motivation warm-up (the first "
                f"{settings.motivation_warmup_ratio:.0%} of the optimizer steps): give SMMixTask(..., total_steps=N) "
                "(or task.set_run_length(total_steps=N)), or call task.set_position(progress=...) before each "
                "training step; motivation_warmup_ratio=0 is the paper's schedule, without a warm-up."
            )
        if reads_epoch and "epoch" not in self._told and self.clock.steps_per_epoch is None:
            reader = "mix_off_epoch" if settings.mix_off_epoch is not None else "motivation_warmup_epochs"
            raise ValueError(
                f"SMMixTask needs the epoch for {reader}: give SMMixTask(..., steps_per_epoch=len(loader)) (or "
                "task.set_run_length(steps_per_epoch=...)), or call task.set_position(epoch=...) before each "
                "training step."
            )
        return position

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

    # ---- checkpoints: the draws and the count resume exactly ----

    @property
    def draws(self) -> MixRandom:
        """The run's draw generators (``state_dict`` / ``load_state_dict``), e.g. for
        ``accelerator.register_for_checkpointing(task.draws, task.clock)``; ``task.state_dict()`` holds them too."""
        return self.method.random

    def get_extra_state(self) -> dict[str, Any]:
        """The draw generators and the count of training calls, saved in ``task.state_dict()`` beside the model's
        weights."""
        return {"draws": self.method.state_dict(), "clock": self.clock.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["draws"])
        self.clock.load_state_dict(state["clock"])

    def get_task_state(self, module: nn.Module | None = None, ema: bool = False) -> dict[str, Any]:
        """timm's checkpoint hook: the draw generators and the count (timm saves them as ``task_state``)."""
        return {} if ema else {"smmix_draws": self.method.state_dict(), "smmix_clock": self.clock.state_dict()}

    def load_task_state(
        self, state: dict[str, Any] | None, strict: bool = True, module: nn.Module | None = None, ema: bool = False
    ) -> None:
        if ema:
            return
        missing = [key for key in ("smmix_draws", "smmix_clock") if state is None or key not in state]
        if missing and strict:
            raise KeyError(f"the checkpoint's task_state has no {' or '.join(missing)}; the run cannot resume exactly.")
        if state is not None and "smmix_draws" in state:
            self.method.load_state_dict(state["smmix_draws"])
        if state is not None and "smmix_clock" in state:
            self.clock.load_state_dict(state["smmix_clock"])
