"""``SMMixTrainer``: a ``transformers.Trainer`` whose training loss is SMMix (or a baseline mixer)."""

from __future__ import annotations

import os
from collections import Counter
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.trainer_pt_utils import nested_gather

from smmix_hf._compat import TrainerPrivateOverrides
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.config import SMMixConfig
from smmix_hf.draws import MixDraw, MixSampler, check_token_grid
from smmix_hf.evaluation import compute_topk_metrics, preprocess_logits_for_metrics
from smmix_hf.losses import (
    consistency_loss,
    consistency_target,
    fine_grained_loss,
    mixed_soft_target,
    smoothed_one_hot,
    soft_target_cross_entropy,
)
from smmix_hf.mix_examples import MixExample, MixExamplesCallback
from smmix_hf.mixing import (
    cutmix_images,
    flip_pairing,
    mixup_images,
    paste_windows,
    random_window_corners,
    smmix_images,
)
from smmix_hf.model_card import write_model_card
from smmix_hf.motivator import Motivator
from smmix_hf.nonfinite import NonFiniteTracker
from smmix_hf.stream_resume import enable_stateful_loading

__all__ = ["SMMixTrainer"]

LOSS_TERMS = ("loss_cls", "loss_fine", "loss_con")


class SMMixTrainer(TrainerPrivateOverrides):
    """Trains an image classifier with SMMix (Chen et al., ICCV 2023).

    Batches carry ``pixel_values`` and hard integer ``labels``; all mixing happens in
    :meth:`compute_loss`. An SMMix batch costs one extra no-grad forward of the clean images (the
    "motivated" forward, in eval mode), which yields the image attention score (Eq. 6) and the clean
    logits. The mixed batch (Eq. 7-8) is then trained with
    ``L = w_cls·L_cls (Eq. 9) + w_fine·L_fine (Eq. 10-13) + w_con·L_con (Eq. 14)``.
    With probability ``mixup_switch_prob`` a batch uses Mixup instead. ``mix_method`` cutmix / mixup / none
    train the baselines in the same trainer.

    Sample ``i`` of a batch takes its source from sample ``B-1-i``; the configuration demands an even
    per-device batch, and in a shorter final batch of odd size the middle image is its own source.

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
        super().__init__(model=model, args=args, **kwargs)
        self.probe = SMMixProbe(self.model) if args.mix_method == "smmix" else None
        self.motivator = self._setup_motivator(motivator)
        self.last_mix_example: MixExample | None = None
        if args.save_mix_examples:
            self.add_callback(MixExamplesCallback(self, args.save_mix_examples))
        self.mix_sampler = MixSampler(
            mix_method=args.mix_method,
            mixup_prob=args.mixup_switch_prob,
            mixup_alpha=args.mixup_alpha,
            cutmix_alpha=args.cutmix_alpha,
            region_scale=args.region_scale,
            seed=args.seed + (args.process_index if args.per_process_draws else 0),
            region_sampling=args.region_sampling,
            mix_prob=args.mix_prob,
            cutmix_minmax=tuple(args.cutmix_minmax) if args.cutmix_minmax else None,
        )
        if self.probe is not None:
            self._check_token_grid()
        self._term_sums: dict[str, torch.Tensor] = {}
        self._term_counts: Counter[str] = Counter()
        self._method_counts: Counter[str] = Counter()
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
        mixing = self.args.mix_off_epoch is None or (self.state.epoch or 0.0) < self.args.mix_off_epoch
        draw = self.mix_sampler.draw(image_size, grid, mixing=mixing)
        if draw.method == "smmix":
            loss, terms, outputs = self._smmix_loss(model, images, labels, draw, grid)
        else:
            loss, terms, outputs = self._baseline_loss(model, images, labels, draw)
        self._record(draw.method, terms)
        self.nonfinite.track(loss, self.state.global_step + 1)
        return (loss, outputs) if return_outputs else loss

    def _baseline_loss(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draw: MixDraw
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
        """Mixup, CutMix or no mixing: soft-target CE on the (mixed) smoothed label."""
        if draw.method == "mixup":
            mixed = mixup_images(images, draw.source_fraction)
        elif draw.method == "cutmix":
            mixed = cutmix_images(images, draw.box)
        else:
            mixed = None
        if self.args.save_mix_examples and draw.method == "cutmix":
            self.last_mix_example = MixExample.from_cutmix(images, labels, mixed, draw.box, self.state.global_step + 1)
        outputs = model(pixel_values=images if mixed is None else mixed.images)
        num_classes = outputs.logits.shape[-1]
        smoothing = self.args.label_smoothing_factor
        if mixed is None:
            target = smoothed_one_hot(labels, num_classes, smoothing)
        else:
            target = mixed_soft_target(labels, mixed.source_index, mixed.source_fraction, num_classes, smoothing)
        loss_cls = soft_target_cross_entropy(outputs.logits, target)
        return self.args.cls_loss_weight * loss_cls, {"loss_cls": loss_cls}, outputs

    def _smmix_loss(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        draw: MixDraw,
        grid: tuple[int, int],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
        """One SMMix batch: motivated forward, max-min mixing, then L_cls + L_fine + L_con."""
        args = self.args
        source_index = flip_pairing(images.shape[0], device=images.device)
        clean_logits = scores = None
        if args.uses_motivated_forward:
            clean_logits, scores = self._motivated_forward(model, images)
        if args.max_min_regions:
            mixed = smmix_images(images, scores, draw.region_size, source_index)
        else:
            corners = [
                random_window_corners(images.shape[0], grid, draw.region_size, self.mix_sampler.torch_generator)
                for _ in range(2)
            ]
            mixed = paste_windows(images, grid, draw.region_size, source_index, *corners)
        if args.save_mix_examples:
            self.last_mix_example = MixExample.from_smmix(
                images, labels, mixed, scores, clean_logits, args.consistency_target, self.state.global_step + 1
            )

        with self.probe.pooling_regions(mixed.source_mask) if args.fine_loss_weight > 0 else nullcontext():
            outputs = model(pixel_values=mixed.images)
        logits, num_classes, smoothing = outputs.logits, outputs.logits.shape[-1], args.label_smoothing_factor
        fraction = mixed.source_fraction

        terms = {
            "loss_cls": soft_target_cross_entropy(
                logits, mixed_soft_target(labels, source_index, fraction, num_classes, smoothing)
            )
        }
        loss = args.cls_loss_weight * terms["loss_cls"]
        if args.fine_loss_weight > 0:
            terms["loss_fine"] = fine_grained_loss(
                self.probe.region_logits, labels, source_index, num_classes, smoothing
            )
            loss = loss + args.fine_loss_weight * terms["loss_fine"]
        if args.consistency_loss_weight > 0:
            target = consistency_target(clean_logits, source_index, fraction, args.consistency_target)
            terms["loss_con"] = consistency_loss(logits, target)
            loss = loss + args.consistency_loss_weight * terms["loss_con"]
        return loss, terms, outputs

    def _motivated_forward(self, model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean no-grad forward in eval mode: clean logits and the image attention scores.

        With a motivator (Tab. 9) the frozen motivator runs instead of ``model``; its scores are
        resampled to ``model``'s token grid.
        """
        if self.motivator is not None:
            return self.motivator(images, self.probe.token_grid((images.shape[-2], images.shape[-1])))
        return self.probe.motivated_forward(images, model)

    def _check_token_grid(self) -> None:
        """Refuse, before training, a model whose token grid leaves no window with a target token."""
        image_size = getattr(self.accelerator.unwrap_model(self.model).config, "image_size", None)
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        if image_size is not None:
            check_token_grid(self.probe.token_grid(tuple(image_size)))

    def _setup_motivator(self, motivator: nn.Module | Motivator | None) -> Motivator | None:
        """The frozen motivator on the student's device and dtype, or None for self-motivated SMMix."""
        if motivator is None:
            return None
        if self.args.mix_method != "smmix":
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

    # ---- logging ----

    def _record(self, method: str, terms: dict[str, torch.Tensor]) -> None:
        self._method_counts[method] += 1
        for name, value in terms.items():
            value = value.detach().float()
            self._term_sums[name] = self._term_sums[name] + value if name in self._term_sums else value
            self._term_counts[name] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean loss terms and the share of batches per mix method to training logs."""
        if "loss" in logs:
            self.stop_if_nonfinite("logging")
        if "loss" in logs and self._method_counts:
            names = [name for name in LOSS_TERMS if self._term_counts[name]]
            if names:
                sums = torch.stack([self._term_sums[name] for name in names])
                sums = nested_gather(sums, self.args.parallel_mode).view(-1, len(names)).mean(dim=0)
                for name, total in zip(names, sums.tolist(), strict=True):
                    logs[name] = total / self._term_counts[name]
            batches = sum(self._method_counts.values())
            for method, count in sorted(self._method_counts.items()):
                logs[f"mix_share_{method}"] = count / batches
            self._term_sums.clear()
            self._term_counts.clear()
            self._method_counts.clear()
        super().log(logs, start_time)

    # ---- the model card ----

    def smmix_recipe(self) -> dict[str, object]:
        """The settings that define this run's recipe, for the model card."""
        args = self.args
        recipe: dict[str, object] = {
            "mix_method": args.mix_method,
            "mixup_switch_prob": args.mixup_switch_prob,
            "mixup_alpha": args.mixup_alpha,
        }
        if args.mix_method == "cutmix":
            recipe["cutmix_alpha"] = args.cutmix_alpha
        if args.mix_method == "smmix":
            recipe.update(
                region_scale=f"{args.region_sampling} {args.region_scale_min}-{args.region_scale_max}",
                max_min_regions=args.max_min_regions,
                cls_loss_weight=args.cls_loss_weight,
                fine_loss_weight=args.fine_loss_weight,
                consistency_loss_weight=args.consistency_loss_weight,
                consistency_target=args.consistency_target,
            )
            if self.motivator is not None:
                recipe["motivator"] = self.motivator.model.config.name_or_path or type(self.motivator.model).__name__
        recipe.update(
            label_smoothing=args.label_smoothing_factor,
            optimizer=args.optim,
            learning_rate=args.learning_rate,
            weight_decay=args.weight_decay,
            lr_scheduler=args.lr_scheduler_type,
            warmup_steps=args.warmup_steps,
            epochs=args.num_train_epochs,
            global_batch_size=args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
            seed=args.seed,
        )
        return recipe

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
