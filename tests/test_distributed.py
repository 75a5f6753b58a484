"""Real 2-process runs on CPU (gloo): ``accelerate launch`` of run_smmix.py, the streamed data each process
receives, and the SMMix loss under FSDP2.

- A training run of run_smmix.py: each process trains on its own images, only the main process writes and prints,
  and the final checkpoint re-evaluates to the same metrics in one process.
- Streamed data: 2 processes build the training stream as run_smmix.py does and iterate
  ``SMMixTrainer.get_train_dataloader()`` for two epochs with 2 DataLoader workers each (no forward or
  backward); labels carry the sample ids. Layouts: 4 WebDataset shards (2 per process), 3 shards (uneven), a
  streamed image folder (one shard per file) and a single parquet file (fewer shards than processes:
  accelerate's fallback, where every process reads the stream and keeps its share of each batch).
- FSDP2: loss and gradients of one SMMix step equal the unsharded model's.

This torch build aborts at process exit in about 1 of 3 two-process gloo runs (NOTES.md); a launch whose
records are all written and whose only failure is that abort passes with a warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_files import records, write_image_folder, write_parquet, write_webdataset
from launching import REPO_ROOT, accelerate_launch, check_exit, free_port
from tiny_models import TINY_VIT_OVERRIDES
from transformers import AutoModelForImageClassification

from smmix_hf.cli.train import main

SCRIPTS = Path(__file__).resolve().parent / "distributed"
DEMO = str(REPO_ROOT / "configs" / "demo.yaml")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
COUNT = 40  # streamed samples


def check_launch(result: subprocess.CompletedProcess, found: set[str], expected: set[str]) -> None:
    """Every process wrote its records; a non-zero exit is accepted only as the known gloo abort at exit."""
    assert found == expected, result.stdout[-3000:] + result.stderr[-5000:]
    check_exit(result)


# ---- run_smmix.py in 2 processes ----


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    output_dir, record_dir = root / "run", root / "records"
    record_dir.mkdir()
    args = [
        "--config", DEMO, "--output_dir", str(output_dir), "--max_steps", "6", "--save_strategy", "steps",
        "--save_steps", "3", "--per_device_train_batch_size", "8", "--max_eval_samples", "64",
        "--logging_steps", "3", "--disable_tqdm", "true",
    ]  # fmt: skip
    result = accelerate_launch(SCRIPTS / "recording_run_smmix.py", args, {"SMMIX_RECORD_DIR": str(record_dir)})
    check_launch(result, {path.name for path in record_dir.iterdir()}, {"rank0.json", "rank1.json"})
    records = [json.loads((record_dir / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    return output_dir, records, result.stdout


def test_both_processes_train_on_different_data(two_process_run):
    _, records, _ = two_process_run
    seen = [set(record["images"]) for record in records]
    assert len(records[0]["images"]) == len(records[1]["images"]) == 6 * 8
    assert seen[0].isdisjoint(seen[1])
    assert len(seen[0] | seen[1]) == 2 * 6 * 8


def test_only_the_main_process_writes_and_prints(two_process_run):
    output_dir, records, stdout = two_process_run
    assert records[0]["model_cards"] >= 1 and records[1]["model_cards"] == 0
    assert {"checkpoint-3", "checkpoint-6"} <= {path.name for path in output_dir.iterdir()}
    assert (output_dir / "README.md").is_file() and (output_dir / "model.safetensors").is_file()
    assert not list(output_dir.glob("**/*.tmp"))
    results = [line for line in stdout.splitlines() if line.startswith("top-1 = ")]
    assert results == [f"top-1 = {records[0]['metrics']['eval_top1']:.4f}  top-5 = "
                       f"{records[0]['metrics']['eval_top5']:.4f}  (64 held-out images)"], stdout[-3000:]  # fmt: skip


def test_final_checkpoint_reevaluates_to_the_same_metrics_in_one_process(two_process_run, tmp_path):
    output_dir, records, _ = two_process_run
    model = AutoModelForImageClassification.from_pretrained(output_dir)
    assert model.config.num_labels == 10
    distributed = records[0]["metrics"]
    assert records[1]["metrics"]["eval_top1"] == distributed["eval_top1"]
    single = main([
        "--model", str(output_dir), "--dataset_name", "sklearn-digits", "--do_train", "false", "--do_eval",
        "--output_dir", str(tmp_path), "--max_eval_samples", "64", "--crop_pct", "1.0", "--use_cpu", "true",
        "--report_to", "none", "--per_device_eval_batch_size", "16", "--seed", "0",
    ])  # fmt: skip
    assert single["eval_top1"] == distributed["eval_top1"]
    assert single["eval_top5"] == distributed["eval_top5"]
    assert single["eval_loss"] == pytest.approx(distributed["eval_loss"], rel=1e-5)


# ---- streamed data: each sample reaches exactly one process per epoch ----


@pytest.fixture(scope="module")
def records_per_layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("streams")
    rows = records(COUNT, COUNT)
    names = root / "ids.txt"
    names.write_text("".join(f"id{index}\n" for index in range(COUNT)))
    validation = write_image_folder(root / "val", records(4, 2))
    common = [
        "--model", "deit-tiny", "--from_scratch", "--config_overrides", TINY_VIT_OVERRIDES, "--streaming",
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
    result = accelerate_launch(SCRIPTS / "stream_shard_ids.py", [str(record_dir), str(plan)], OFFLINE)
    expected = {f"{layout}-rank{rank}.json" for layout in layouts for rank in (0, 1)}
    check_launch(result, {path.name for path in record_dir.iterdir()}, expected)
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


# ---- FSDP2 ----


@pytest.mark.parametrize("region_head", ["shared", "separate"])
def test_smmix_loss_and_gradients_under_fsdp2_equal_the_unsharded_model(tmp_path, region_head):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        str(SCRIPTS / "fsdp_smmix_equivalence.py"),
    ]  # fmt: skip
    env = {**os.environ, "SMMIX_RECORD_DIR": str(tmp_path), "SMMIX_REGION_HEAD": region_head}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    for rank in (0, 1):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert record["sharded"] and record["has_region_logits"]
        assert record["loss"] == pytest.approx(record["reference_loss"], rel=1e-6)
        assert record["worst_relative_grad_difference"] < 1e-5
        if region_head == "separate":
            assert record["region_head_has_grad"] and record["head_file_matches"]
