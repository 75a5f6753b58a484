"""Loading a trained checkpoint and one labelled split, transformed as in evaluation, for the analyses."""

from __future__ import annotations

import os

import datasets
from transformers import AutoImageProcessor, AutoModelForImageClassification, PreTrainedModel

from smmix_hf.backbones.names import resolve_model_name
from smmix_hf.data.digits import DIGITS_DATASET_NAME, load_digits_dataset
from smmix_hf.data.transforms import build_eval_transform, make_batch_transform, settings_from_image_processor

__all__ = ["load_checkpoint", "load_split"]


def load_checkpoint(model_name_or_path: str) -> tuple[PreTrainedModel, object]:
    """The classifier and its image processor from a training output directory (or a Hub id)."""
    resolved = resolve_model_name(model_name_or_path)
    model = AutoModelForImageClassification.from_pretrained(resolved)
    try:
        processor = AutoImageProcessor.from_pretrained(resolved)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{resolved} has no usable image processor (preprocessor_config.json); save one with the model."
        ) from error
    return model.eval(), processor


def load_split(
    processor: object,
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    split: str = "validation",
    image_column: str = "image",
    label_column: str = "label",
    crop_pct: float = 0.875,
    max_samples: int | None = None,
    seed: int = 0,
) -> datasets.Dataset:
    """One split with the evaluation transform of ``processor``: rows of ``pixel_values`` and ``labels``.

    ``dataset`` is ``sklearn-digits`` (its seeded train / validation split) or anything
    ``datasets.load_dataset`` reads; ``data_dir`` is an image folder with one sub-folder per class.
    """
    if (dataset is None) == (data_dir is None):
        raise ValueError(f"pass exactly one of --dataset (e.g. {DIGITS_DATASET_NAME}) or --data_dir (an image folder).")
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise ValueError(f"--data_dir {data_dir!r} is not a directory of class sub-folders.")
        rows = datasets.load_dataset("imagefolder", data_dir=data_dir, split="train")
    elif dataset == DIGITS_DATASET_NAME:
        splits = load_digits_dataset(seed=seed)
        if split not in splits:
            raise ValueError(f"{DIGITS_DATASET_NAME} has the splits {', '.join(splits)}; got --split {split!r}.")
        rows = splits[split]
    else:
        rows = datasets.load_dataset(dataset, split=split)
    for role, column in (("image", image_column), ("label", label_column)):
        if column not in rows.column_names:
            raise ValueError(
                f"{role} column {column!r} is not in the data; its columns are {', '.join(rows.column_names)}. "
                f"Pass --{role}_column."
            )
    if max_samples is not None:
        rows = rows.select(range(min(max_samples, len(rows))))
    settings = settings_from_image_processor(processor, crop_pct=crop_pct)
    transform = make_batch_transform(build_eval_transform(settings), image_column, label_column)
    return rows.with_transform(transform)
