"""Where images come from: a ``datasets`` dataset (Hub id or local path), image folders, shard files or
the bundled digits, as a map-style table or streamed.

With ``--streaming`` the training split is an ``IterableDataset``; the evaluation split is always a
map-style table, so that every process of a distributed evaluation sees equally many batches. A streamed
Hub dataset's validation split is read once through the stream (no other split is downloaded) and kept
in the ``datasets`` cache. Image columns are read undecoded, so that a file that does not decode can be
skipped and counted by the transform instead of failing inside ``datasets``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datasets
import pyarrow.parquet as pq
from datasets.packaged_modules.imagefolder.imagefolder import ImageFolder

from smmix_hf.data.arguments import DataArguments
from smmix_hf.data.digits import DIGITS_DATASET_NAME, load_digits_dataset
from smmix_hf.data.local_files import check_class_folders, expand_data_files, shard_format, stream_image_folder

__all__ = ["HELD_OUT_SEED", "ImageSplits", "check_labels", "class_names", "load_image_dataset"]

logger = logging.getLogger("smmix_hf")

HELD_OUT_SEED = 0
IMAGE_FOLDER_EXTENSIONS = frozenset(extension.lower() for extension in ImageFolder.EXTENSIONS)
DIGITS_STREAM_SHARDS = 4

TrainSplit = datasets.Dataset | datasets.IterableDataset


@dataclass
class ImageSplits:
    """The training split (absent for evaluation alone), the evaluation split, and what is known of the size
    of a streamed training split (``num_train_examples`` and where that number comes from)."""

    train: TrainSplit | None
    validation: datasets.Dataset | None
    num_train_examples: int | None = None
    size_source: str | None = None

    def __getitem__(self, name: str) -> TrainSplit | None:
        return {"train": self.train, "validation": self.validation}[name]

    @property
    def streaming(self) -> bool:
        return isinstance(self.train, datasets.IterableDataset)


def load_image_dataset(
    data_args: DataArguments, seed: int = 0, token: str | None = None, *, with_train: bool = True
) -> ImageSplits:
    """Train and validation splits with the image and label columns checked.

    Without a validation split, ``train_val_split`` of train is held out (stratified by label). The
    held-out split never depends on the training seed, so runs with different seeds share one test set.
    ``with_train=False`` (evaluation alone) needs only evaluation data.
    """
    _check_source_flags(data_args)
    separate_validation = bool(data_args.validation_dir or data_args.validation_files)
    splits = _load_named(data_args, token, with_train) if data_args.dataset_name else ImageSplits(None, None)
    local_train = bool(data_args.train_dir or data_args.train_files)
    if splits.train is None and local_train and (with_train or not separate_validation):
        splits.train, splits.num_train_examples, splits.size_source = _load_local_train(data_args)
    if separate_validation:
        splits.validation = _align_columns(_load_local_validation(data_args), data_args)
    if splits.train is None and with_train:
        raise ValueError(
            f"no training data: pass --dataset_name (a dataset id or path, or {DIGITS_DATASET_NAME}), --train_dir "
            "or --train_files, or --do_train false to evaluate only."
        )
    if splits.train is None and splits.validation is None:
        raise ValueError(
            "no evaluation data: pass --dataset_name with a validation split, --validation_dir or --validation_files."
        )
    _check_columns(splits.train if splits.train is not None else splits.validation, data_args)
    if splits.validation is None:
        splits.train, splits.validation = _hold_out(splits.train, data_args)
    _check_columns(splits.validation, data_args)
    if not with_train:
        splits.train, splits.num_train_examples, splits.size_source = None, None, None
    _limit(splits, data_args, seed)
    splits.train = _undecoded(splits.train, data_args.image_column_name)
    splits.validation = _undecoded(splits.validation, data_args.image_column_name)
    return splits


def _check_source_flags(data_args: DataArguments) -> None:
    given = [flag for flag in ("dataset_name", "train_dir", "train_files") if getattr(data_args, flag)]
    if len(given) > 1:
        raise ValueError(
            f"--{' and --'.join(given)} are both training sources; pass one of --dataset_name, --train_dir, "
            "--train_files."
        )
    if data_args.validation_dir and data_args.validation_files:
        raise ValueError("pass one of --validation_dir and --validation_files, not both.")
    if data_args.shuffle_buffer_size < 0:
        raise ValueError(
            f"--shuffle_buffer_size must be >= 0 (0 keeps the stored order); got {data_args.shuffle_buffer_size}."
        )
    if data_args.num_train_examples is not None and data_args.num_train_examples < 1:
        raise ValueError(f"--num_train_examples must be >= 1; got {data_args.num_train_examples}.")


def _missing_train(names: list[str]) -> ValueError:
    return ValueError(
        f"the dataset has no 'train' split; its splits are: {', '.join(names)}. Pass --do_train false to evaluate only."
    )


def _load_named(data_args: DataArguments, token: str | None, with_train: bool) -> ImageSplits:
    """A dataset named by ``--dataset_name``: the bundled digits, a Hub id or a local path."""
    if data_args.dataset_name == DIGITS_DATASET_NAME:
        digits = load_digits_dataset()
        if data_args.streaming:
            stream = digits["train"].to_iterable_dataset(num_shards=DIGITS_STREAM_SHARDS)
            return ImageSplits(stream, digits["validation"], len(digits["train"]), "the digits' training split")
        return ImageSplits(digits["train"], digits["validation"])
    load_kwargs = {
        "path": data_args.dataset_name,
        "name": data_args.dataset_config_name,
        "revision": data_args.dataset_revision,
        "token": token,
    }
    if not data_args.streaming:
        loaded = datasets.load_dataset(**load_kwargs)
        if "train" not in loaded and (with_train or "validation" not in loaded):
            raise _missing_train(list(loaded))
        return ImageSplits(loaded.get("train"), loaded.get("validation"))
    streams = datasets.load_dataset(**load_kwargs, streaming=True)
    if "train" not in streams and (with_train or "validation" not in streams):
        raise _missing_train(list(streams))
    validation = None
    if "validation" in streams:
        validation = _materialize(load_kwargs, "validation", data_args.image_column_name, data_args.max_eval_samples)
    train = streams.get("train")
    split_info = (train.info.splits or {}).get("train") if train is not None else None
    size = split_info.num_examples if split_info is not None and split_info.num_examples else None
    return ImageSplits(train, validation, size, "the dataset's split info" if size else None)


def _stream_rows(load_kwargs: dict[str, Any], split: str, image_column: str, limit: int | None) -> Iterator[dict]:
    stream = datasets.load_dataset(**load_kwargs, split=split, streaming=True)
    stream = _undecoded(stream, image_column)
    yield from stream.take(limit) if limit is not None else stream


def _materialize(load_kwargs: dict[str, Any], split: str, image_column: str, limit: int | None) -> datasets.Dataset:
    """A streamed split written once to an Arrow table in the ``datasets`` cache (images stay encoded)."""
    stream = datasets.load_dataset(**load_kwargs, split=split, streaming=True)
    features = _undecoded(stream, image_column).features
    return datasets.Dataset.from_generator(
        _stream_rows,
        features=features,
        gen_kwargs={"load_kwargs": load_kwargs, "split": split, "image_column": image_column, "limit": limit},
        split=datasets.Split(split),
    )


def _parquet_rows(files: list[str]) -> int | None:
    """The number of rows in local parquet files, from their footers."""
    try:
        return sum(pq.ParquetFile(file).metadata.num_rows for file in files)
    except (OSError, ValueError):
        return None


def _load_local_train(data_args: DataArguments) -> tuple[TrainSplit, int | None, str | None]:
    """``--train_dir`` or ``--train_files``, map-style or streamed, with the streamed split's size if known."""
    if data_args.train_dir:
        if data_args.streaming:
            stream, size = stream_image_folder(data_args.train_dir)
            return stream, size, "the image folder's file count"
        return _load_image_folder(data_args.train_dir, "--train_dir"), None, None
    files = expand_data_files(data_args.train_files, "--train_files")
    builder = shard_format(files, "--train_files")
    loaded = datasets.load_dataset(builder, data_files={"train": files}, split="train", streaming=data_args.streaming)
    if not data_args.streaming:
        return loaded, None, None
    size = _parquet_rows(files) if builder == "parquet" else None
    return loaded, size, "the parquet metadata" if size else None


def _load_image_folder(directory: str, flag: str) -> datasets.Dataset:
    """An image folder through the ``datasets`` ``imagefolder`` builder, which would drop an empty class folder
    without a word (and with it a class id): refused first."""
    check_class_folders(directory, flag, extensions=IMAGE_FOLDER_EXTENSIONS)
    return datasets.load_dataset("imagefolder", data_dir=directory, split="train")


def _load_local_validation(data_args: DataArguments) -> datasets.Dataset:
    """``--validation_dir`` or ``--validation_files`` as a map-style table."""
    if data_args.validation_dir:
        return _load_image_folder(data_args.validation_dir, "--validation_dir")
    files = expand_data_files(data_args.validation_files, "--validation_files")
    builder = shard_format(files, "--validation_files")
    return datasets.load_dataset(builder, data_files={"validation": files}, split="validation")


def _hold_out(train: TrainSplit, data_args: DataArguments) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split ``train_val_split`` of a map-style training split off for evaluation."""
    if isinstance(train, datasets.IterableDataset):
        raise ValueError(
            "a streamed training split cannot be split for evaluation; pass --validation_dir or --validation_files, "
            "use a dataset with a 'validation' split, or drop --streaming."
        )
    label_feature = train.features[data_args.label_column_name]
    stratify = data_args.label_column_name if isinstance(label_feature, datasets.ClassLabel) else None
    held_out = train.train_test_split(
        test_size=data_args.train_val_split, seed=HELD_OUT_SEED, stratify_by_column=stratify
    )
    return held_out["train"], held_out["test"]


def _limit(splits: ImageSplits, data_args: DataArguments, seed: int) -> None:
    """Apply ``--max_train_samples`` / ``--max_eval_samples``: shuffle with ``seed``, then keep the first N.

    As in ``run_image_classification.py``: on a class-sorted folder the first N rows would be a few classes.
    A streamed training split is shuffled in a buffer later; it keeps its first N examples.
    """
    if data_args.max_train_samples is not None and splits.train is not None:
        count = data_args.max_train_samples
        if isinstance(splits.train, datasets.IterableDataset):
            splits.train = splits.train.take(count)
            if splits.num_train_examples is None or count < splits.num_train_examples:
                splits.num_train_examples, splits.size_source = count, "--max_train_samples"
        else:
            splits.train = splits.train.shuffle(seed=seed).select(range(min(count, len(splits.train))))
    if data_args.max_eval_samples is not None and splits.validation is not None:
        count = min(data_args.max_eval_samples, len(splits.validation))
        splits.validation = splits.validation.shuffle(seed=seed).select(range(count))


def _undecoded(split: TrainSplit | None, image_column: str) -> TrainSplit | None:
    """The split with its image column left encoded (decoded later, one image at a time, by the transform)."""
    if split is None or not split.features:
        return split
    feature = split.features.get(image_column)
    if isinstance(feature, datasets.Image) and feature.decode:
        return split.cast_column(image_column, datasets.Image(decode=False))
    return split


def _image_columns(split: TrainSplit) -> list[str]:
    return [name for name, feature in (split.features or {}).items() if isinstance(feature, datasets.Image)]


def _label_columns(split: datasets.Dataset) -> list[str]:
    features = split.features
    named = [name for name in ("label", "labels", "cls") if name in features]
    return [name for name, feature in features.items() if isinstance(feature, datasets.ClassLabel)] or named


def _align_columns(validation: datasets.Dataset, data_args: DataArguments) -> datasets.Dataset:
    """Validation data stored apart from the training data (an image folder beside WebDataset shards) gets
    the training data's column names, when its own image and label columns are unambiguous."""
    renames = {}
    for column, candidates in (
        (data_args.image_column_name, _image_columns(validation)),
        (data_args.label_column_name, _label_columns(validation)),
    ):
        if column not in validation.column_names and len(candidates) == 1 and candidates[0] not in renames:
            renames[candidates[0]] = column
    if not renames:
        return validation
    logger.warning(
        "validation data: reading column(s) %s as %s, the training data's names.",
        ", ".join(map(repr, renames)),
        ", ".join(map(repr, renames.values())),
    )
    return validation.rename_columns(renames)


def _check_columns(split: TrainSplit, data_args: DataArguments) -> None:
    columns = split.column_names
    if columns is None:
        return
    for role, column in (("image", data_args.image_column_name), ("label", data_args.label_column_name)):
        if column not in columns:
            candidates = (
                _image_columns(split) if role == "image" else [c for c in columns if c in ("cls", "labels", "label")]
            )
            hint = f" (the data's {role} column looks like {candidates[0]!r})" if candidates else ""
            raise ValueError(
                f"{role} column {column!r} is not in the dataset; its columns are: {', '.join(columns)}. "
                f"Pass --{role}_column_name{hint}."
            )


def class_names(split: datasets.Dataset, label_column: str) -> list[str]:
    """Class names from a ``ClassLabel`` column, or the label values as strings."""
    feature = split.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    values = sorted(set(split[label_column]))
    if values != list(range(len(values))):
        shown = ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")
        raise ValueError(
            f"label column {label_column!r} holds {shown}; labels must be class ids 0..{len(values) - 1} or a "
            "ClassLabel feature: cast it with dataset.cast_column(column, datasets.ClassLabel(names=[...]))."
        )
    return [str(label) for label in values]


def check_labels(split: datasets.Dataset, label_column: str, num_labels: int) -> None:
    """Every label of ``split`` must be a class id of the model (0..num_labels-1)."""
    outside = sorted({label for label in split[label_column] if not 0 <= label < num_labels})
    if outside:
        raise ValueError(
            f"label column {label_column!r} holds {', '.join(map(str, outside[:8]))}, outside the model's "
            f"{num_labels} classes (0..{num_labels - 1}); fix the labels or train on a label set that covers them."
        )
