"""``smmix-train`` (also ``python -m smmix_hf`` and ``run_smmix.py``): train and evaluate an image classifier with
SMMix from the command line.

Everything before the first training step is set-up: a ``ValueError`` or ``FileNotFoundError`` raised there is a
usage error, reported by :func:`cli` as one line and exit status 2 (see :mod:`smmix_hf.cli.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import datasets
import transformers
from transformers import set_seed

from smmix_hf.backbones.names import resolve_model_name
from smmix_hf.checkpoint_files import CheckpointFileRefused
from smmix_hf.cli.arguments import DataArguments, ModelArguments
from smmix_hf.cli.errors import UsageError, run_command, usage_errors
from smmix_hf.cli.learning_rate import scaled_learning_rate
from smmix_hf.cli.locations import check_model_sources, check_output_path, check_resume_checkpoint, loading_model
from smmix_hf.cli.parser import parse_args
from smmix_hf.cli.preflight import check_extras, check_image_size, check_output_dir, check_push_to_hub
from smmix_hf.config import SMMixConfig
from smmix_hf.data.labels import model_label_names
from smmix_hf.data.pipeline import PreparedData, prepare_datasets, transform_settings
from smmix_hf.data.sources import load_image_dataset
from smmix_hf.data.transforms import evaluation_image_processor
from smmix_hf.data.uint8_eval import Uint8EvalTransform
from smmix_hf.device_trainer import training_parts
from smmix_hf.models import build_image_processor, load_model
from smmix_hf.motivator import load_motivator
from smmix_hf.trainer import SMMixTrainer

logger = logging.getLogger("smmix_hf")


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run training and / or evaluation; returns the final evaluation metrics (empty if none).

    Raises :class:`~smmix_hf.cli.errors.UsageError` (a ``ValueError``) for a mistake found during set-up.
    """
    with usage_errors():
        trainer, data_args, model_args = set_up(argv)
    return train_and_evaluate(trainer, data_args, model_args)


def cli() -> None:
    """The console command: usage errors print one line and exit 2; training failures keep their traceback."""
    run_command(main)


def set_up(argv: Sequence[str] | None) -> tuple[SMMixTrainer, DataArguments, ModelArguments]:
    """Arguments, checks, data, model, transforms and trainer: everything before the first step."""
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    check_output_path(training_args.output_dir)
    check_output_dir(training_args)
    check_resume_checkpoint(training_args)
    check_push_to_hub(training_args)
    check_extras(data_args.streaming)
    hub_kwargs = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token}
    check_model_sources(model_args)
    set_seed(training_args.seed)

    learning_rate = scaled_learning_rate(training_args, data_args)
    if learning_rate is not None:
        training_args.learning_rate = learning_rate
    splits = load_image_dataset(
        data_args, seed=training_args.seed, token=model_args.token, with_train=training_args.do_train
    )
    with loading_model(model_args.model_name_or_path, "--model"):
        names = model_label_names(
            splits, data_args, model_args.model_name_or_path, from_scratch=model_args.from_scratch, **hub_kwargs
        )
        model = load_model(
            model_args.model_name_or_path,
            id2label=dict(enumerate(names)),
            from_scratch=model_args.from_scratch,
            config_overrides=model_args.config_overrides,
            ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
            **hub_kwargs,
        )
        image_processor = build_image_processor(
            model, model_args.model_name_or_path, model_args.from_scratch, **hub_kwargs
        )
    settings = transform_settings(image_processor, data_args)
    if getattr(model, "timm_model", None) is None:
        # The saved processor must give pipeline() exactly the evaluation transform's pixels.
        image_processor = evaluation_image_processor(settings)
    check_image_size(model, settings.image_size, training_args)
    # uint8, crop-only decode in the workers; with --decode_on_device the JPEGs are decoded on the GPU
    train_transform, collator, trainer_class = training_parts(settings, data_args, do_train=training_args.do_train)
    eval_transform = Uint8EvalTransform(settings)  # the saved processor's pixels, normalised on the device
    data = prepare_datasets(
        splits, train_transform, eval_transform, data_args, training_args, label2id=model.config.label2id
    )
    apply_stream_plan(training_args, data)

    motivator = None
    if model_args.motivator_model:
        with loading_model(model_args.motivator_model, "--motivator_model"):
            motivator = load_motivator(model_args.motivator_model, **hub_kwargs)
    trainer = trainer_class(
        model=model,
        args=training_args,
        motivator=motivator,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=collator,
        processing_class=image_processor,
        callbacks=data.callbacks,
        **data.metric_functions,
    )
    return trainer, data_args, model_args


def train_and_evaluate(trainer: SMMixTrainer, data_args: DataArguments, model_args: ModelArguments) -> dict[str, float]:
    """Train, evaluate, write the model card and push; failures here keep their traceback."""
    training_args = trainer.args
    card_fields = {
        "finetuned_from": None if model_args.from_scratch else resolve_model_name(model_args.model_name_or_path),
        "dataset": data_args.dataset_name or data_args.train_dir or data_args.train_files,
        "license": model_args.license,
        "language": model_args.language,
        "tags": model_args.tags,
    }

    if training_args.do_train:
        recipe = ", ".join(f"{key}={value}" for key, value in trainer.smmix_recipe().items())
        logger.info("Training recipe: %s", recipe)  # names the motivation warm-up, the one non-paper default
        try:
            train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        except CheckpointFileRefused as error:  # a resume that read a file it refused: nothing has trained yet
            raise UsageError(str(error)) from error
        trainer.save_model(_internal_call=True)  # the one push happens after evaluation, with the card
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
        trainer.save_state()

    metrics: dict[str, float] = {}
    if training_args.do_eval:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        if trainer.is_world_process_zero():  # every process has the gathered metrics; one line for the run
            print(
                f"top-1 = {metrics['eval_top1']:.4f}  top-5 = {metrics['eval_top5']:.4f}  "
                f"({len(trainer.eval_dataset)} held-out images)"
            )

    if training_args.do_train:
        trainer.create_model_card(**card_fields)
        if training_args.push_to_hub:
            push_final_model(trainer, **card_fields)
    trainer.accelerator.end_training()
    return metrics


def apply_stream_plan(training_args: SMMixConfig, data: PreparedData) -> None:
    """A streamed training split has no length: take the ``max_steps`` the data plan computed, and let every
    process read its own shards (``dispatch_batches`` off) unless the user set it."""
    if data.max_steps is None:
        return
    training_args.max_steps = data.max_steps
    if training_args.accelerator_config.dispatch_batches is None:
        training_args.accelerator_config.dispatch_batches = False


def push_final_model(trainer: SMMixTrainer, **card_fields: Any) -> None:
    """Push through the Trainer's own mechanism; a failed upload leaves the saved model in place and says so."""
    try:
        trainer.push_to_hub(**card_fields)
    except Exception as error:
        raise RuntimeError(
            f"training finished and the model is saved in {trainer.args.output_dir!r}, but pushing it to "
            f"{trainer.args.hub_model_id or 'the Hub'} failed ({type(error).__name__}: {error}); upload it later "
            f"with `hf upload {trainer.args.hub_model_id or '<repo id>'} {trainer.args.output_dir}`."
        ) from error
