"""``run_smmix.py``: train (and evaluate) an image classifier with SMMix from the command line."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import datasets
import transformers
from transformers import set_seed

from smmix_hf.cli.parser import parse_args
from smmix_hf.data.sources import class_names, load_image_dataset
from smmix_hf.data.transforms import (
    build_eval_transform,
    build_train_transform,
    collate_image_batch,
    make_batch_transform,
    settings_from_image_processor,
)
from smmix_hf.models import build_image_processor, load_model, resolve_model_name
from smmix_hf.trainer import SMMixTrainer

logger = logging.getLogger("smmix_hf")


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run training and / or evaluation; returns the final evaluation metrics (empty if none)."""
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    set_seed(training_args.seed)

    splits = load_image_dataset(data_args, seed=training_args.seed, token=model_args.token)
    names = class_names(splits["train"], data_args.label_column_name)
    hub_kwargs = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token}
    model = load_model(
        model_args.model_name_or_path,
        id2label=dict(enumerate(names)),
        from_scratch=model_args.from_scratch,
        config_overrides=model_args.config_overrides,
        ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
        **hub_kwargs,
    )
    image_processor = build_image_processor(model, model_args.model_name_or_path, model_args.from_scratch, **hub_kwargs)
    settings = settings_from_image_processor(
        image_processor,
        random_resized_crop_scale=(data_args.crop_scale_min, 1.0),
        horizontal_flip=data_args.horizontal_flip,
        crop_pct=data_args.crop_pct,
    )
    columns = {"image_column": data_args.image_column_name, "label_column": data_args.label_column_name}
    splits["train"].set_transform(make_batch_transform(build_train_transform(settings), **columns))
    splits["validation"].set_transform(make_batch_transform(build_eval_transform(settings), **columns))

    trainer = SMMixTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"] if training_args.do_train else None,
        eval_dataset=splits["validation"],
        data_collator=collate_image_batch,
        processing_class=image_processor,
    )
    base_model = None if model_args.from_scratch else resolve_model_name(model_args.model_name_or_path)
    dataset_name = data_args.dataset_name or data_args.train_dir

    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
        trainer.save_state()

    metrics: dict[str, float] = {}
    if training_args.do_eval or training_args.do_train:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        print(
            f"top-1 = {metrics['eval_top1']:.4f}  top-5 = {metrics['eval_top5']:.4f}  "
            f"({len(splits['validation'])} held-out images)"
        )

    if training_args.do_train:
        trainer.create_model_card(finetuned_from=base_model, dataset=dataset_name)
        if training_args.push_to_hub:
            trainer.push_to_hub(finetuned_from=base_model, dataset=dataset_name)
    trainer.accelerator.end_training()
    return metrics
