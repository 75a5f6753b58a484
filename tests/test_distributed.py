"""A real 2-process run of run_smmix.py through `accelerate launch` on CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from launching import REPO_ROOT, accelerate_launch, free_port
from transformers import AutoModelForImageClassification

from smmix_hf.cli.train import main

RECORDING_SCRIPT = Path(__file__).resolve().parent / "distributed" / "recording_run_smmix.py"
DEMO = str(REPO_ROOT / "configs" / "demo.yaml")


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
    result = accelerate_launch(RECORDING_SCRIPT, args, {"SMMIX_RECORD_DIR": str(record_dir)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    records = [json.loads((record_dir / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    return output_dir, records


def test_both_processes_train_on_different_data(two_process_run):
    _, records = two_process_run
    seen = [set(record["images"]) for record in records]
    assert len(records[0]["images"]) == len(records[1]["images"]) == 6 * 8
    assert seen[0].isdisjoint(seen[1])
    assert len(seen[0] | seen[1]) == 2 * 6 * 8


def test_only_the_main_process_writes(two_process_run):
    output_dir, records = two_process_run
    assert records[0]["model_cards"] >= 1 and records[1]["model_cards"] == 0
    assert {"checkpoint-3", "checkpoint-6"} <= {path.name for path in output_dir.iterdir()}
    assert (output_dir / "README.md").is_file() and (output_dir / "model.safetensors").is_file()
    assert not list(output_dir.glob("**/*.tmp"))


def test_final_checkpoint_reevaluates_to_the_same_metrics_in_one_process(two_process_run, tmp_path):
    output_dir, records = two_process_run
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


@pytest.mark.parametrize("region_head", ["shared", "separate"])
def test_smmix_loss_and_gradients_under_fsdp2_equal_the_unsharded_model(tmp_path, region_head):
    script = Path(__file__).resolve().parent / "distributed" / "fsdp_smmix_equivalence.py"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        str(script),
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
