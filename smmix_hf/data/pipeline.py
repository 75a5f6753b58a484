"""From loaded splits to what the Trainer takes: transformed datasets, callbacks and evaluation metrics.

A map-style training split gets its transform through ``set_transform`` and is wrapped in
:class:`~smmix_hf.data.seeded.SeededSamples` (augmentation that a resumed run repeats); a streamed one is
shuffled and transformed lazily with ``IterableDataset.map`` under a per-example seed
(:class:`~smmix_hf.data.seeded.SeededExampleTransform`), and ``max_steps`` is derived for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import datasets
from transformers import TrainerCallback

from smmix_hf.config import SMMixConfig
from smmix_hf.data.arguments import DataArguments
from smmix_hf.data.class_subset import read_class_subset, subset_topk_ids
from smmix_hf.data.images import SkipCounter
from smmix_hf.data.seeded import SeededExampleTransform, SeededSamples, SetEpochCallback
from smmix_hf.data.seeded_rows import make_seeded_row_transform
from smmix_hf.data.skipped import SkippedImagesCallback
from smmix_hf.data.sources import ImageSplits, check_labels
from smmix_hf.data.streaming import plan_streaming, shuffle_stream
from smmix_hf.data.transforms import (
    ImageTransform,
    TransformSettings,
    make_batch_transform,
    make_example_transform,
    settings_from_image_processor,
)
from smmix_hf.data.uint8_transform import Uint8TrainTransform
from smmix_hf.evaluation import compute_topk_metrics

__all__ = ["PreparedData", "prepare_datasets", "transform_settings"]


def transform_settings(image_processor: Any, data_args: DataArguments) -> TransformSettings:
    """The transform settings of the command line on top of what the image processor says.

    Input side, crop share, filter and statistics come from the processor (see
    :func:`~smmix_hf.data.transforms.settings_from_image_processor`); a ``--crop_pct`` or ``--interpolation``
    the user gave replaces the processor's (None: keep it).
    """
    return settings_from_image_processor(
        image_processor,
        random_resized_crop_scale=(data_args.crop_scale_min, data_args.crop_scale_max),
        random_resized_crop_ratio=(data_args.crop_ratio_min, data_args.crop_ratio_max),
        horizontal_flip=data_args.horizontal_flip,
        crop_pct=data_args.crop_pct,
        interpolation=data_args.interpolation,
        auto_augment=data_args.auto_augment,
        color_jitter=data_args.color_jitter,
        random_erasing=data_args.random_erasing,
        random_erasing_mode=data_args.random_erasing_mode,
        random_erasing_count=data_args.random_erasing_count,
    )


@dataclass
class PreparedData:
    """Datasets for the Trainer, the callbacks they need and, for a class subset, the metric functions."""

    train: datasets.IterableDataset | SeededSamples | None
    validation: datasets.Dataset
    callbacks: list[TrainerCallback] = field(default_factory=list)
    metric_functions: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None  # set for a streamed training split, which has no length


def prepare_datasets(
    splits: ImageSplits,
    train_transform: ImageTransform | Uint8TrainTransform | None,
    eval_transform: ImageTransform,
    data_args: DataArguments,
    args: SMMixConfig,
    *,
    label2id: dict[str, int],
) -> PreparedData:
    """Attach the transforms; set up streaming, skip counting and an evaluation class subset."""
    num_labels = len(label2id)
    columns = {
        "image_column": data_args.image_column_name,
        "label_column": data_args.label_column_name,
        "strict": data_args.strict_images,
    }
    subset = None
    if data_args.eval_class_subset:
        subset = read_class_subset(data_args.eval_class_subset, label2id, num_labels)
    eval_labels = len(subset) if subset else num_labels
    check_labels(splits.validation, data_args.label_column_name, eval_labels)
    eval_counter = SkipCounter("evaluation")
    splits.validation.set_transform(
        make_batch_transform(eval_transform, counter=eval_counter, label_map=subset, num_labels=eval_labels, **columns)
    )
    prepared = PreparedData(train=None, validation=splits.validation)
    if subset is not None:
        prepared.metric_functions = {
            "compute_metrics": compute_topk_metrics,
            "preprocess_logits_for_metrics": subset_topk_ids(subset),
        }
    train_counter = None
    if splits.train is not None and train_transform is not None:
        train_counter = SkipCounter("training")
        options = {"counter": train_counter, "num_labels": num_labels, **columns}
        takes_seed = bool(getattr(train_transform, "takes_seed", False))
        if isinstance(splits.train, datasets.IterableDataset):
            readers = args.world_size * max(1, args.dataloader_num_workers)
            stream = shuffle_stream(splits.train, args.seed, data_args.shuffle_buffer_size, readers)
            example_transform = (
                make_seeded_row_transform(train_transform, **options)  # type: ignore[arg-type]
                if takes_seed
                else make_example_transform(train_transform, **options)
            )
            transform = SeededExampleTransform(
                example_transform, args.seed, data_args.image_column_name, takes_seed=takes_seed
            )
            prepared.train = stream.map(transform, remove_columns=stream.column_names)
            prepared.callbacks.append(SetEpochCallback(transform))
            prepared.max_steps = plan_streaming(
                args, data_args, prepared.train, splits.num_train_examples, splits.size_source
            )
        elif takes_seed:  # stored rows; the transform decodes and draws for itself
            row_transform = make_seeded_row_transform(train_transform, **options)  # type: ignore[arg-type]
            prepared.train = SeededSamples(splits.train, seed=args.seed, transform=row_transform)
            prepared.callbacks.append(SetEpochCallback(prepared.train))
        else:
            splits.train.set_transform(make_batch_transform(train_transform, **options))
            prepared.train = SeededSamples(splits.train, seed=args.seed)
            prepared.callbacks.append(SetEpochCallback(prepared.train))
    prepared.callbacks.append(SkippedImagesCallback(train_counter, eval_counter))
    return prepared
