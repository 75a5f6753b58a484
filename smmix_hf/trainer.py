"""``SMMixTrainer``: a ``transformers.Trainer`` whose training loss is SMMix (or a baseline mixer)."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.trainer_pt_utils import nested_gather

from smmix_hf._compat import TrainerPrivateOverrides
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.config import SMMixConfig
from smmix_hf.evaluation import compute_topk_metrics, preprocess_logits_for_metrics
from smmix_hf.methods import MixSettings, RunPosition, build_mix_method
from smmix_hf.mix_examples import MixExample, MixExamplesCallback
from smmix_hf.model_card import training_recipe, write_model_card
from smmix_hf.motivator import Motivator
from smmix_hf.nonfinite import NonFiniteTracker
from smmix_hf.region_head import save_region_head
from smmix_hf.stream_resume import enable_stateful_loading
from smmix_hf.term_log import LossTermLog

__all__ = ["SMMixTrainer"]


class SMMixTrainer(TrainerPrivateOverrides):
    """Trains an image classifier with SMMix (Chen et al., ICCV 2023) or a baseline mixer.

    Batches carry ``pixel_values`` and hard integer ``labels``. :meth:`compute_loss` is glue around the
    run's :class:`~smmix_hf.methods.MixMethod` (:attr:`method`): it asks for a draw, runs the motivated
    forward (eval mode, no grad: the Eq. 6 scores and clean logits) when the method needs it, lets the
    method mix (Eq. 7-8), runs the mixed forward inside the method's hooks and asks for its loss terms
    (Eq. 9-14). Sample ``i`` takes its source from sample ``B-1-i``.

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
        seed = args.seed + (args.process_index if args.per_process_draws else 0)
        self.method = build_mix_method(MixSettings.from_config(args, motivator_given=motivator is not None), seed)
        # Refuse a model the method cannot train before the Trainer sets anything up (e.g. the output directory).
        probe = self._check_model(model) if model is not None else None
        super().__init__(model=model, args=args, **kwargs)
        self.probe = probe if model is not None else self._check_model(self.model)
        self.motivator = self._setup_motivator(motivator)
        self.last_mix_example: MixExample | None = None
        if args.save_mix_examples:
            self.add_callback(MixExamplesCallback(self, args.save_mix_examples))
        self.term_log = LossTermLog()
        self.nonfinite = NonFiniteTracker()
        if self.streams_training_data:
            enable_stateful_loading(self.accelerator)

    # ---- the loss ----

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        images, labels = inputs["pixel_values"], inputs["labels"]
        if not model.training:
            outputs = model(pixel_values=images)
            loss = F.cross_entropy(outputs.logits.float(), labels)
            return (loss, outputs) if return_outputs else loss

        image_size = (images.shape[-2], images.shape[-1])
        grid = self.probe.token_grid(image_size) if self.probe is not None else None
        draw = self.method.draw(image_size, grid, RunPosition.of(self.state))
        method = draw.mixer
        clean_logits = scores = None
        if draw.needs_clean_forward:
            clean_logits, scores = self._motivated_forward(model, images)
        mixed = method.mix(images, draw, clean_logits, scores)
        if self.args.save_mix_examples:  # methods that do not show their windows keep the latest example
            example = method.example(images, labels, mixed, clean_logits, scores, self.state.global_step + 1)
            self.last_mix_example = example or self.last_mix_example
        with method.mixed_forward(self.probe, mixed):
            outputs = model(pixel_values=mixed.images)
        terms = method.losses(outputs.logits, labels, mixed, clean_logits, self.probe)
        loss = method.weighted_loss(terms)
        self.term_log.record(method.name, terms)
        self.nonfinite.track(loss, self.state.global_step + 1)
        return (loss, outputs) if return_outputs else loss

    def _motivated_forward(self, model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean no-grad forward in eval mode: clean logits and the image attention scores.

        With a motivator (Tab. 9) the frozen motivator runs instead of ``model``; its scores are
        resampled to ``model``'s token grid.
        """
        if self.motivator is not None:
            return self.motivator(images, self.probe.token_grid((images.shape[-2], images.shape[-1])))
        return self.probe.motivated_forward(images, model)

    def _check_model(self, model: nn.Module) -> SMMixProbe | None:
        """The model's probe, once the method accepts the model (it refuses e.g. a 1-token grid, no class token)."""
        separate_head = self.method.settings.region_head == "separate"
        probe = SMMixProbe(model, separate_head) if self.method.needs_probe else None
        image_size = getattr(model.config, "image_size", None)
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        try:
            self.method.check_model(probe, None if image_size is None else tuple(image_size))
        except ValueError:
            if probe is not None:
                probe.remove()
            raise
        return probe

    def _setup_motivator(self, motivator: nn.Module | Motivator | None) -> Motivator | None:
        """The frozen motivator on the student's device and dtype, or None for self-motivated SMMix."""
        if motivator is None:
            return None
        if not self.method.accepts_motivator:
            raise ValueError(f"a motivator drives SMMix only; got mix_method={self.args.mix_method!r}.")
        motivator = motivator if isinstance(motivator, Motivator) else Motivator(motivator)
        motivator.check_student(self.model, uses_clean_logits=self.args.consistency_loss_weight > 0)
        return motivator.to(self.args.device, dtype=self.model.dtype)

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
