"""Streamed training: max_steps from the split's size, reshuffling every epoch, the learning-rate rule, and
run_smmix.py end to end over WebDataset shards holding a file that does not decode."""

from __future__ import annotations

import logging

import pytest
import torch
from data_files import records, sample_id, single_intra_op_thread, write_image_folder, write_webdataset

from smmix_hf.cli.arguments import DataArguments
from smmix_hf.cli.learning_rate import scaled_learning_rate
from smmix_hf.cli.parser import parse_args
from smmix_hf.cli.train import main
from smmix_hf.config import SMMixConfig
from smmix_hf.data.images import ImageDecodeError
from smmix_hf.data.pipeline import prepare_datasets
from smmix_hf.data.sources import load_image_dataset
from smmix_hf.data.streaming import streaming_max_steps
from smmix_hf.data.transforms import TransformSettings, build_eval_transform, build_train_transform

one_thread = pytest.fixture(autouse=True)(single_intra_op_thread)
TINY = "image_size=32,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"


def config(tmp_path, **values) -> SMMixConfig:
    return SMMixConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **values)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_max_steps_from_the_split_size_or_a_clear_error(tmp_path, caplog):
    args = config(tmp_path, per_device_train_batch_size=32, num_train_epochs=2)
    with caplog.at_level(logging.WARNING, logger="smmix_hf"):
        assert streaming_max_steps(args, DataArguments(), 1437, "the parquet metadata") == 2 * 45
    assert "1437 training examples (from the parquet metadata), global batch 32 -> 45 steps per epoch" in caplog.text
    assert streaming_max_steps(args, DataArguments(num_train_examples=100), None, None) == 2 * 4
    assert streaming_max_steps(args, DataArguments(num_train_examples=100, max_train_samples=64), 9, "x") == 2 * 2
    accumulated = config(tmp_path, per_device_train_batch_size=8, gradient_accumulation_steps=4, num_train_epochs=0.5)
    assert streaming_max_steps(accumulated, DataArguments(num_train_examples=320), None, None) == 5
    assert streaming_max_steps(config(tmp_path, max_steps=7), DataArguments(), None, None) == 7
    with pytest.raises(ValueError) as error:
        streaming_max_steps(args, DataArguments(), None, None)
    assert "pass --num_train_examples N" in one_line(error)


def test_learning_rate_scales_with_the_global_batch_and_is_never_silently_overridden(tmp_path, caplog):
    args = config(tmp_path, per_device_train_batch_size=8, gradient_accumulation_steps=2)
    data = DataArguments(base_learning_rate=5e-4, base_batch_size=512)
    with caplog.at_level(logging.WARNING, logger="smmix_hf"):
        assert scaled_learning_rate(args, data) == pytest.approx(5e-4 * 16 / 512)
    assert "learning rate 1.5625e-05 = base_learning_rate 0.0005 x global batch 16" in caplog.text
    assert scaled_learning_rate(args, DataArguments()) is None
    base = ["--model", "deit-tiny", "--output_dir", str(tmp_path / "out"), "--base_learning_rate", "5e-4"]
    with pytest.raises(ValueError) as error:
        parse_args([*base, "--learning_rate", "1e-3"])
    assert "--learning_rate and --base_learning_rate are both set" in one_line(error)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 0.001\n")
    with pytest.raises(ValueError, match="both set"):
        parse_args([*base, "--config", str(recipe)])
    assert parse_args(base)[1].base_learning_rate == 5e-4


def test_stream_is_reshuffled_every_epoch_and_each_epoch_holds_every_image(tmp_path):
    folder = write_image_folder(tmp_path / "train", records(24, 2))
    data = DataArguments(train_dir=str(folder), validation_dir=str(folder), streaming=True, shuffle_buffer_size=8)
    splits = load_image_dataset(data)
    settings = TransformSettings(image_size=8, mean=(0, 0, 0), std=(1, 1, 1), horizontal_flip=False)
    prepared = prepare_datasets(
        splits, build_train_transform(settings), build_eval_transform(settings), data, config(tmp_path),
        label2id={"class000": 0, "class001": 1},
    )  # fmt: skip
    orders = []
    for epoch in (0, 1):
        prepared.train.set_epoch(epoch)
        orders.append([sample_id(row["pixel_values"]) for row in prepared.train])
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(24))
    assert orders[0] != orders[1]
    assert isinstance(prepared.train, torch.utils.data.IterableDataset)


@pytest.fixture
def shards_with_a_broken_file(tmp_path):
    write_webdataset(tmp_path / "wds", records(16, 2, corrupt=(5,)), shards=3)
    validation = write_webdataset(tmp_path / "wds", records(20, 2)[16:], shards=1, prefix="val")
    names = tmp_path / "classes.txt"
    names.write_text("even\nodd\n")
    return [
        "--model", "deit-tiny", "--from_scratch", "--config_overrides", TINY,
        "--train_files", str(tmp_path / "wds" / "train-*.tar"), "--validation_files", str(validation[0]),
        "--image_column_name", "png", "--label_column_name", "cls", "--label_names_file", str(names),
        "--streaming", "--num_train_examples", "16", "--num_train_epochs", "1", "--per_device_train_batch_size", "4",
        "--auto_augment", "none", "--random_erasing", "0", "--crop_pct", "1.0", "--output_dir", str(tmp_path / "run"),
        "--do_train", "--do_eval", "--use_cpu", "true", "--report_to", "none", "--save_strategy", "no",
        "--disable_tqdm", "true", "--base_learning_rate", "1e-3",
    ]  # fmt: skip


def test_cli_streams_webdataset_shards_and_counts_the_broken_file(shards_with_a_broken_file, caplog):
    with caplog.at_level(logging.WARNING, logger="smmix_hf"):
        metrics = main([*shards_with_a_broken_file, "--dataloader_num_workers", "2"])
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    assert "16 training examples (from --num_train_examples), global batch 4 -> 4 steps per epoch" in caplog.text
    assert "learning rate 7.8125e-06 = base_learning_rate 0.001 x global batch 4" in caplog.text
    assert "end of epoch 1: 1 training image(s) did not decode and were skipped (1 so far)" in caplog.text


def test_cli_strict_images_stops_at_the_broken_file(shards_with_a_broken_file):
    with pytest.raises(ImageDecodeError) as error:
        main([*shards_with_a_broken_file, "--strict_images", "--dataloader_num_workers", "0"])
    assert "cannot decode image 's00005.png' in" in one_line(error)
