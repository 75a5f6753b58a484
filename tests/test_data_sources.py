"""Every data source of the command line, map-style and streamed, built on disk in tmp_path."""

from __future__ import annotations

import datasets
import pytest
from data_files import records, write_image_folder, write_parquet, write_webdataset

from smmix_hf.cli.arguments import DataArguments
from smmix_hf.data.labels import split_label_names
from smmix_hf.data.sources import ImageSplits, load_image_dataset


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def ids_of(split) -> list[str]:
    return sorted(row["image"]["path"].rsplit("/", 1)[-1].split(".")[0] for row in split)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """12 training and 4 validation images, 3 classes, in every layout."""
    root = tmp_path_factory.mktemp("stored")
    train, validation = records(12, 3), records(16, 3)[12:]
    return {
        "train_dir": write_image_folder(root / "folder" / "train", train),
        "validation_dir": write_image_folder(root / "folder" / "val", validation),
        "tars": write_webdataset(root / "wds", train, shards=3),
        "val_tars": write_webdataset(root / "wds", validation, shards=1, prefix="val"),
        "parquet": write_parquet(root / "parquet" / "data", train, shards=2, num_classes=3),
        "val_parquet": write_parquet(
            root / "parquet" / "data", validation, shards=1, num_classes=3, prefix="validation"
        ),
        "root": root,
    }


def test_image_folders_map_style(stored):
    splits = load_image_dataset(
        DataArguments(train_dir=str(stored["train_dir"]), validation_dir=str(stored["validation_dir"]))
    )
    assert isinstance(splits.train, datasets.Dataset) and len(splits.train) == 12 and len(splits.validation) == 4
    assert splits.train.features["label"].names == ["class000", "class001", "class002"]
    assert splits.train.features["image"].decode is False  # decoded one image at a time by the transform


def test_image_folder_streamed_in_shards_with_its_size(stored):
    splits = load_image_dataset(
        DataArguments(train_dir=str(stored["train_dir"]), validation_dir=str(stored["validation_dir"]), streaming=True)
    )
    assert isinstance(splits.train, datasets.IterableDataset) and splits.streaming
    assert splits.train.n_shards == 12 and splits.num_train_examples == 12
    assert isinstance(splits.validation, datasets.Dataset)
    assert ids_of(splits.train) == [f"s{index:05d}" for index in range(12)]
    assert split_label_names(splits.train, "label") == ["class000", "class001", "class002"]


def test_webdataset_shards_streamed(stored, tmp_path):
    data = DataArguments(
        train_files=str(stored["root"] / "wds" / "train-*.tar"),
        validation_files=str(stored["val_tars"][0]),
        image_column_name="png",
        label_column_name="cls",
        streaming=True,
    )
    splits = load_image_dataset(data)
    assert splits.train.n_shards == 3 and splits.num_train_examples is None
    assert sorted(row["__key__"] for row in splits.train) == [f"s{index:05d}" for index in range(12)]
    with pytest.raises(ValueError) as error:
        split_label_names(splits.train, "cls")
    assert "pass --label_names_file FILE" in one_line(error)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n\nbird\n")
    assert split_label_names(splits.train, "cls", str(names)) == ["cat", "dog", "bird"]


def test_webdataset_without_the_image_column_names_it(stored):
    data = DataArguments(train_files=str(stored["tars"][0]), validation_files=str(stored["val_tars"][0]))
    with pytest.raises(ValueError) as error:
        load_image_dataset(data)
    assert "image column 'image' is not in the dataset; its columns are: png, cls, __key__, __url__" in one_line(error)
    assert "looks like 'png'" in one_line(error)


def test_parquet_shards_streamed_with_their_size_from_the_metadata(stored):
    files = ",".join(map(str, stored["parquet"]))
    data = DataArguments(train_files=files, validation_files=str(stored["val_parquet"][0]), streaming=True)
    splits = load_image_dataset(data)
    assert splits.num_train_examples == 12 and splits.size_source == "the parquet metadata"
    assert split_label_names(splits.train, "label") == ["class000", "class001", "class002"]
    data.max_train_samples = 5
    limited = load_image_dataset(data)
    assert limited.num_train_examples == 5 and len(list(limited.train)) == 5


def test_a_dataset_directory_streamed_keeps_its_validation_split_as_a_table(stored):
    data = DataArguments(dataset_name=str(stored["root"] / "parquet"), streaming=True, max_eval_samples=3)
    splits = load_image_dataset(data)
    assert isinstance(splits.train, datasets.IterableDataset)
    assert isinstance(splits.validation, datasets.Dataset) and len(splits.validation) == 3
    assert splits.validation.features["image"].decode is False


def test_evaluation_alone_needs_no_training_data(stored):
    splits = load_image_dataset(DataArguments(validation_dir=str(stored["validation_dir"])), with_train=False)
    assert splits.train is None and len(splits.validation) == 4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"train_files": "/nowhere/train-*.tar"}, "--train_files '/nowhere/train-*.tar' matches no file"),
        ({"train_dir": "a", "dataset_name": "b"}, "--dataset_name and --train_dir are both training sources"),
        ({}, "no training data: pass --dataset_name"),
        ({"streaming": True, "dataset_name": "sklearn-digits", "shuffle_buffer_size": -1}, "--shuffle_buffer_size"),
    ],
)
def test_bad_source_flags_give_one_line_errors(arguments, message):
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        load_image_dataset(DataArguments(**arguments))
    assert message in one_line(error)


def test_mixed_shard_formats_are_refused(stored):
    files = f"{stored['tars'][0]},{stored['parquet'][0]}"
    with pytest.raises(ValueError) as error:
        load_image_dataset(DataArguments(train_files=files))
    assert "mixes or does not name shard files (.parquet, .tar)" in one_line(error)


def test_a_streamed_split_without_validation_data_is_refused(stored):
    data = DataArguments(train_dir=str(stored["train_dir"]), streaming=True)
    with pytest.raises(ValueError) as error:
        load_image_dataset(data)
    assert "a streamed training split cannot be split for evaluation" in one_line(error)


def test_digits_stream_for_quick_runs():
    splits = load_image_dataset(DataArguments(dataset_name="sklearn-digits", streaming=True))
    assert isinstance(splits, ImageSplits) and splits.train.n_shards == 4 and splits.num_train_examples == 1437
