"""Class names for the model's ``id2label``: from a ``ClassLabel`` column, a names file or a checkpoint."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import datasets
from transformers import AutoConfig

from smmix_hf.backbones.names import resolve_model_name
from smmix_hf.data.sources import ImageSplits, class_names

__all__ = [
    "checkpoint_label_names",
    "model_label_names",
    "read_label_names",
    "split_label_names",
    "warn_if_names_differ",
]

logger = logging.getLogger("smmix_hf")
_GENERIC_NAME = re.compile(r"^(LABEL_)?\d+$")


def read_label_names(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (line k names class k); blank lines and ``#`` lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label names file {str(path)!r} does not exist; write one class name per line.")
    names = [line.strip() for line in path.read_text().splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if not names:
        raise ValueError(f"label names file {str(path)!r} names no class; write one class name per line.")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"label names file {str(path)!r} names {duplicates[0]!r} twice; class names must be unique.")
    return names


def split_label_names(
    split: datasets.Dataset | datasets.IterableDataset, label_column: str, names_file: str | None = None
) -> list[str]:
    """The class names of a split: the names file if given, else its ``ClassLabel`` names, else its label values.

    A streamed split cannot be scanned for its label values, so it needs a ``ClassLabel`` column or a file.
    """
    if names_file:
        return read_label_names(names_file)
    feature = (split.features or {}).get(label_column)
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    if isinstance(split, datasets.IterableDataset):
        raise ValueError(
            f"the streamed label column {label_column!r} holds plain integers, so the number of classes is unknown; "
            "pass --label_names_file FILE with one class name per line (line k names class k)."
        )
    return class_names(split, label_column)


def checkpoint_label_names(model_name_or_path: str, **hub_kwargs: object) -> list[str]:
    """The class names stored in a checkpoint's config, in class-id order."""
    config = AutoConfig.from_pretrained(model_name_or_path, **hub_kwargs)
    return [str(config.id2label[index]) for index in range(config.num_labels)]


def warn_if_names_differ(split: datasets.Dataset, label_column: str, model_names: list[str]) -> None:
    """Warn when the evaluation data names its classes differently from the model (ids are compared as is)."""
    feature = split.features.get(label_column)
    if not isinstance(feature, datasets.ClassLabel) or all(_GENERIC_NAME.match(name) for name in model_names):
        return
    if list(feature.names) != model_names[: len(feature.names)]:
        logger.warning(
            "the evaluation labels are named %s... but the model's classes %s...; label ids are compared as they "
            "are, so make sure class k means the same in both (or pass --eval_class_subset).",
            list(feature.names[:3]),
            model_names[:3],
        )


def model_label_names(
    splits: ImageSplits, data_args: Any, model_name_or_path: str, *, from_scratch: bool, **hub_kwargs: object
) -> list[str]:
    """The classes the model will have: the training data's, or for evaluation alone the checkpoint's own."""
    if splits.train is not None:
        return split_label_names(splits.train, data_args.label_column_name, data_args.label_names_file)
    if from_scratch:
        return split_label_names(splits.validation, data_args.label_column_name, data_args.label_names_file)
    names = checkpoint_label_names(resolve_model_name(model_name_or_path), **hub_kwargs)
    if not data_args.eval_class_subset:
        warn_if_names_differ(splits.validation, data_args.label_column_name, names)
    return names
