"""Where training images come from: a ``datasets`` dataset, an image folder or the bundled digits."""

from __future__ import annotations

import datasets

from smmix_hf.cli.arguments import DataArguments
from smmix_hf.data.digits import DIGITS_DATASET_NAME, load_digits_dataset

__all__ = ["class_names", "load_image_dataset"]

HELD_OUT_SEED = 0


def load_image_dataset(data_args: DataArguments, seed: int, token: str | None = None) -> datasets.DatasetDict:
    """Train and validation splits with the image and label columns checked.

    Without a validation split, ``train_val_split`` of train is held out (stratified by label). The
    held-out split never depends on the training seed, so runs with different seeds share one test set.
    """
    if data_args.dataset_name == DIGITS_DATASET_NAME:
        splits = load_digits_dataset()
    elif data_args.dataset_name:
        splits = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name, token=token)
    elif data_args.train_dir:
        data_dirs = {"train": data_args.train_dir}
        if data_args.validation_dir:
            data_dirs["validation"] = data_args.validation_dir
        splits = datasets.DatasetDict(
            {
                name: datasets.load_dataset("imagefolder", data_dir=path, split="train")
                for name, path in data_dirs.items()
            }
        )
    else:
        raise ValueError(
            f"no data given: pass --dataset_name (a dataset id or path, or {DIGITS_DATASET_NAME}) or --train_dir."
        )
    if "train" not in splits:
        raise ValueError(f"the dataset has no 'train' split; its splits are: {', '.join(splits)}.")
    _check_columns(splits["train"], data_args)
    if "validation" not in splits:
        label_feature = splits["train"].features[data_args.label_column_name]
        stratify = data_args.label_column_name if isinstance(label_feature, datasets.ClassLabel) else None
        held_out = splits["train"].train_test_split(
            test_size=data_args.train_val_split, seed=HELD_OUT_SEED, stratify_by_column=stratify
        )
        splits = datasets.DatasetDict({"train": held_out["train"], "validation": held_out["test"]})
    if data_args.max_train_samples is not None:
        splits["train"] = splits["train"].select(range(min(data_args.max_train_samples, len(splits["train"]))))
    if data_args.max_eval_samples is not None:
        count = min(data_args.max_eval_samples, len(splits["validation"]))
        splits["validation"] = splits["validation"].select(range(count))
    return splits


def _check_columns(split: datasets.Dataset, data_args: DataArguments) -> None:
    for role, column in (("image", data_args.image_column_name), ("label", data_args.label_column_name)):
        if column not in split.column_names:
            raise ValueError(
                f"{role} column {column!r} is not in the dataset; its columns are: {', '.join(split.column_names)}. "
                f"Pass --{role}_column_name."
            )


def class_names(split: datasets.Dataset, label_column: str) -> list[str]:
    """Class names from a ``ClassLabel`` column, or the label values as strings."""
    feature = split.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    return [str(label) for label in sorted(set(split[label_column]))]
