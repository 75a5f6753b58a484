"""``SMMixTrainer``: a ``transformers.Trainer`` whose training loss is SMMix (or a baseline mixer)."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import torch
from torch import nn
from transformers.trainer_pt_utils import nested_gather

from smmix_hf._compat import TrainerPrivateOverrides
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.backbones.region_head import save_region_head
from smmix_hf.config import SMMixConfig
from smmix_hf.data.device_batch import finish_pixels
from smmix_hf.evaluation import compute_topk_metrics, preprocess_logits_for_metrics
from smmix_hf.methods import MixMethod, MixSettings, RunPosition
from smmix_hf.mix_examples import MixExample, MixExamplesCallback
from smmix_hf.model_card import training_recipe, write_model_card
from smmix_hf.motivator import Motivator
from smmix_hf.nonfinite import NonFiniteTracker
from smmix_hf.stream_resume import enable_stateful_loading
from smmix_hf.task import SMMixTask
from smmix_hf.term_log import LossTermLog

__all__ = ["SMMixTrainer"]


class SMMixTrainer(TrainerPrivateOverrides):
    """Trains an image classifier with SMMix (Chen et al., ICCV 2023) or a baseline mixer.

    Batches carry ``pixel_values`` and hard integer ``labels``. :meth:`compute_loss` calls the run's
    :class:`~smmix_hf.task.SMMixTask` (:attr:`task`), the same object a plain PyTorch, timm or Lightning loop
    calls: draw, motivated forward (Eq. 6), mixing (Eq. 7-8), mixed forward and losses (Eq. 9-14). The
    trainer tells the task where the run is (:meth:`~smmix_hf.task.SMMixTask.set_position`), logs its loss terms and
    checkpoints its draws.

    Evaluation is plain cross-entropy on clean images and reports ``top1`` / ``top5`` unless other
    ``compute_metrics`` are given. The loss terms and the share of batches per mix method are logged
    with the Trainer's own logging.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean; the Trainer divides by GA steps

    def __init__(
        self,
        model: nn.Module | None = None,
        args: SMMixConfig | None = None,
        motivator: nn.Module | Motivator | None = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            args = SMMixConfig(output_dir="smmix_output")
        if not isinstance(args, SMMixConfig):
            raise TypeError(f"SMMixTrainer needs an SMMixConfig for `args`; got {type(args).__name__}.")
        if kwargs.get("compute_metrics") is None and kwargs.get("preprocess_logits_for_metrics") is None:
            kwargs["compute_metrics"] = compute_topk_metrics
            kwargs["preprocess_logits_for_metrics"] = preprocess_logits_for_metrics
        # Refuse a model the method cannot train before the Trainer sets anything up (e.g. the output directory).
        task = self._task_for(model, args, motivator) if model is not None else None
        super().__init__(model=model, args=args, **kwargs)
        self.task = task if task is not None else self._task_for(self.model, args, motivator)
        if args.save_mix_examples:
            self.task.keep_mix_examples = True
            self.add_callback(MixExamplesCallback(self, args.save_mix_examples))
        self.term_log = LossTermLog()
        self.nonfinite = NonFiniteTracker()
        if self.streams_training_data:
            enable_stateful_loading(self.accelerator)

    @staticmethod
    def _task_for(model: nn.Module, args: SMMixConfig, motivator: nn.Module | Motivator | None) -> SMMixTask:
        settings = MixSettings.from_config(args, motivator_given=motivator is not None)
        seed = args.seed + (args.process_index if args.per_process_draws else 0)
        # SMMixConfig refuses an odd per-device batch size; only an epoch's last batch can be odd, and it trains.
        return SMMixTask(model, settings, motivator, seed=seed, allow_odd_batch=True)

    @property
    def method(self) -> MixMethod:
        """The run's mixing method (the DeiT switch around ``mix_method``): its draws are checkpointed."""
        return self.task.method

    @property
    def probe(self) -> SMMixProbe | None:
        return self.task.probe

    @property
    def motivator(self) -> Motivator | None:
        return self.task.motivator

    @property
    def last_mix_example(self) -> MixExample | None:
        return self.task.last_mix_example

    # ---- the loss: one SMMixTask step ----

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        task = self.task
        if task.trainable_module is not model:  # the Trainer wraps the model (DDP, FSDP, compile) once it trains
            task.wrap(model)
        position = RunPosition.of(self.state)  # the Trainer counts its run itself (optimizer steps, accumulation)
        if position is None:
            task.set_position(outside_run=True)  # compute_loss before train()
        else:
            task.set_position(epoch=position.epoch, progress=position.progress, step=position.step)
        result = task(finish_pixels(inputs), inputs["labels"])  # uint8 batches: normalised and erased here
        loss = result["loss"]
        if model.training:
            self.term_log.record(task.last_method, {name: result[name] for name in task.loss_terms if name in result})
            self.nonfinite.track(loss, self.state.global_step + 1)
        return (loss, {"logits": result["output"]}) if return_outputs else loss

    # ---- non-finite losses: tracked on the device, checked whenever the host reads or saves anyway ----

    def stop_if_nonfinite(self, before: str) -> None:
        self.nonfinite.check(before)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        self.stop_if_nonfinite("saving the model")
        super().save_model(output_dir, _internal_call=_internal_call)
        save_region_head(self.model, output_dir or self.args.output_dir, self.args.should_save)

    # ---- logging ----

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean loss terms and the share of batches per mix method to training logs."""
        if "loss" in logs:
            self.stop_if_nonfinite("logging")
            gather = partial(nested_gather, parallel_mode=self.args.parallel_mode)
            logs.update(self.term_log.flush(self.method.loss_terms, gather))
        super().log(logs, start_time)

    # ---- the model card ----

    def smmix_recipe(self) -> dict[str, object]:
        """The settings that define this run's recipe, for the model card."""
        motivator = None if self.motivator is None else self.motivator.model
        return training_recipe(self.args, self.method.recipe(), motivator)

    def create_model_card(
        self,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        dataset: str | list[str] | None = None,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Writes ``README.md`` in ``output_dir``: recipe, latest evaluation metrics, citation."""
        if not self.is_world_process_zero():
            return
        evaluations = [entry for entry in self.state.log_history if "eval_top1" in entry]
        metrics = (
            {key: value for key, value in evaluations[-1].items() if key.startswith("eval_")} if evaluations else None
        )
        write_model_card(
            self.args.output_dir,
            model_name=model_name or os.path.basename(os.path.abspath(self.args.output_dir)),
            base_model=finetuned_from,
            dataset_name=dataset if isinstance(dataset, str) or dataset is None else dataset[0],
            recipe=self.smmix_recipe(),
            metrics=metrics,
            license=license,
            language=language,
            tags=tags,
        )
