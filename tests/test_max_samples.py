"""``--max_train_samples`` / ``--max_eval_samples`` shuffle with the seed before taking N, as
``run_image_classification.py`` does: on a class-sorted image folder the first N rows are one class."""

from __future__ import annotations

from data_files import records, write_image_folder

from smmix_hf.cli.arguments import DataArguments
from smmix_hf.data.sources import load_image_dataset


def test_max_samples_take_a_seeded_shuffle_not_the_first_rows(tmp_path):
    train_dir = write_image_folder(tmp_path / "train", records(40, 4))  # class000/ ... class003/, 10 rows each
    val_dir = write_image_folder(tmp_path / "val", records(40, 4))
    data = DataArguments(train_dir=str(train_dir), validation_dir=str(val_dir), max_train_samples=8, max_eval_samples=8)
    first = load_image_dataset(data, seed=0)
    assert len(first.train) == 8 and len(first.validation) == 8
    assert len(set(first.train["label"])) > 1 and len(set(first.validation["label"])) > 1
    again, other_seed = load_image_dataset(data, seed=0), load_image_dataset(data, seed=1)
    assert again.train["label"] == first.train["label"]
    assert [row["path"] for row in again.train["image"]] == [row["path"] for row in first.train["image"]]
    assert [row["path"] for row in other_seed.train["image"]] != [row["path"] for row in first.train["image"]]
