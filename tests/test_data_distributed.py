"""Two real processes stream one dataset: each sample reaches exactly one process in every epoch.

``accelerate launch`` starts 2 CPU processes (gloo), which build the training stream as run_smmix.py does
and iterate ``SMMixTrainer.get_train_dataloader()`` for two epochs with 2 DataLoader workers each (no
forward or backward). Labels carry the sample ids. Layouts: 4 WebDataset shards (2 per process), 3 shards
(uneven), a streamed image folder (one shard per file) and a single parquet file (fewer shards than
processes: accelerate's fallback, where every process reads the stream and keeps its share of each batch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from data_files import records, write_image_folder, write_parquet, write_webdataset
from launching import CPU_2PROC, free_port

SCRIPT = Path(__file__).resolve().parent / "distributed" / "stream_shard_ids.py"
COUNT = 40
TINY = "image_size=32,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"
KNOWN_EXIT_ABORT = "terminate called without an active exception"


@pytest.fixture(scope="module")
def records_per_layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("streams")
    rows = records(COUNT, COUNT)
    names = root / "ids.txt"
    names.write_text("".join(f"id{index}\n" for index in range(COUNT)))
    validation = write_image_folder(root / "val", records(4, 2))
    common = [
        "--model", "deit-tiny", "--from_scratch", "--config_overrides", TINY, "--streaming",
        "--num_train_examples", str(COUNT), "--per_device_train_batch_size", "4", "--shuffle_buffer_size", "8",
        "--dataloader_num_workers", "2", "--use_cpu", "true", "--report_to", "none",
        "--output_dir", str(root / "run"), "--label_names_file", str(names), "--validation_dir", str(validation),
    ]  # fmt: skip
    wds = ["--image_column_name", "png", "--label_column_name", "cls"]
    layouts = {
        "webdataset-4": [*common, *wds, "--train_files", ",".join(map(str, write_webdataset(root / "w4", rows, 4)))],
        "webdataset-3": [*common, *wds, "--train_files", ",".join(map(str, write_webdataset(root / "w3", rows, 3)))],
        "folder": [*common, "--train_dir", str(write_image_folder(root / "folder", rows))],
        "parquet-1": [*common, "--train_files", str(write_parquet(root / "pq", rows, 1, num_classes=COUNT)[0])],
    }
    plan = root / "layouts.json"
    plan.write_text(json.dumps(layouts))
    record_dir = root / "records"
    record_dir.mkdir()
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2PROC),
        "--main_process_port", str(free_port()), str(SCRIPT), str(record_dir), str(plan),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    found = {path.name for path in record_dir.iterdir()}
    expected = {f"{layout}-rank{rank}.json" for layout in layouts for rank in (0, 1)}
    assert found == expected, result.stdout[-3000:] + result.stderr[-5000:]
    if result.returncode != 0:
        assert KNOWN_EXIT_ABORT in result.stderr, result.stderr[-5000:]
        warnings.warn(
            f"the 2-process run aborted at exit (rc {result.returncode}, '{KNOWN_EXIT_ABORT}') after writing "
            "every record; see NOTES.md on this torch build's gloo exit abort.",
            stacklevel=1,
        )
    return {
        layout: [json.loads((record_dir / f"{layout}-rank{rank}.json").read_text()) for rank in (0, 1)]
        for layout in layouts
    }


def test_every_sample_reaches_exactly_one_process_per_epoch(records_per_layout):
    """One test over all layouts, so that the 2-process launch runs once even when pytest-xdist splits tests."""
    for layout, ranks in records_per_layout.items():
        assert [record["world_size"] for record in ranks] == [2, 2], layout
        for epoch in (0, 1):
            seen = [record["epochs"][epoch] for record in ranks]
            assert all(len(ids) == len(set(ids)) for ids in seen), (layout, epoch, seen)
            assert set(seen[0]).isdisjoint(seen[1]), (layout, epoch, seen)
            assert set(seen[0]) | set(seen[1]) == set(range(COUNT)), (layout, epoch, seen)
        assert any(record["epochs"][0] != record["epochs"][1] for record in ranks), layout
    paths = {layout: ranks[0]["dataset"] for layout, ranks in records_per_layout.items()}
    assert paths["webdataset-4"] == paths["webdataset-3"] == paths["folder"] == "IterableDataset"
    assert paths["parquet-1"] == "IterableDatasetShard"
    assert [record["n_shards"] for record in records_per_layout["webdataset-4"]] == [4, 4]
