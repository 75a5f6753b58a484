"""A streamed training split resumes in the saved epoch at the saved stream position, not from its start.

The stream is 4 local parquet shards of 40 images whose labels are their ids, read by 2 DataLoader workers
at batch 4: 10 steps per epoch. The checkpoint at step 12 lies 2 batches into epoch 1, and the runs end at
step 14. The single-process tests record the ids each training step saw; the 2-process test compares
final weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from data_files import records, write_image_folder, write_parquet
from launching import REPO_ROOT, accelerate_launch
from safetensors.torch import load_file

import smmix_hf.trainer as trainer_module
from smmix_hf.cli.train import main
from smmix_hf.stream_resume import STREAM_STATE_NAME

COUNT = 40
TINY = "image_size=32,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"


@pytest.fixture(scope="module")
def stream_args(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("stream")
    shards = write_parquet(root / "train", records(COUNT, COUNT), shards=4, num_classes=COUNT)
    validation = write_image_folder(root / "val", records(4, 2))
    return [
        "--model", "deit-tiny", "--from_scratch", "--config_overrides", TINY, "--streaming", "--do_train", "true",
        "--train_files", ",".join(map(str, shards)), "--validation_dir", str(validation),
        "--per_device_train_batch_size", "4", "--dataloader_num_workers", "2", "--max_steps", "14",
        "--save_strategy", "steps", "--save_steps", "12", "--logging_steps", "7", "--do_eval", "false",
        "--use_cpu", "true", "--report_to", "none", "--disable_tqdm", "true", "--seed", "3",
    ]  # fmt: skip


@pytest.fixture
def trained_ids(monkeypatch) -> list[list[int]]:
    """The ids of every training batch, in order (labels are the ids)."""
    batches: list[list[int]] = []
    compute_loss = trainer_module.SMMixTrainer.compute_loss

    def recording_compute_loss(self, model, inputs, *args, **kwargs):
        if model.training:
            batches.append(inputs["labels"].tolist())
        return compute_loss(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(trainer_module.SMMixTrainer, "compute_loss", recording_compute_loss)
    return batches


def ids(batches: list[list[int]]) -> list[int]:
    return [sample for batch in batches for sample in batch]


def straight_then_resumed(args: list[str], tmp_path: Path, trained_ids: list[list[int]]) -> tuple[list, list]:
    """Train 14 steps; then resume a copy of checkpoint-12. Returns the batches of both runs."""
    main([*args, "--output_dir", str(tmp_path / "straight")])
    straight = list(trained_ids)
    checkpoint = tmp_path / "resumed" / "checkpoint-12"
    shutil.copytree(tmp_path / "straight" / "checkpoint-12", checkpoint)
    assert (checkpoint / STREAM_STATE_NAME.format(rank=0)).is_file()
    trained_ids.clear()
    main([*args, "--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", str(checkpoint)])
    return straight, list(trained_ids)


def test_unshuffled_stream_resumes_exactly(stream_args, tmp_path, trained_ids):
    straight, resumed = straight_then_resumed([*stream_args, "--shuffle_buffer_size", "0"], tmp_path, trained_ids)
    assert len(straight) == 14
    assert sorted(ids(straight[:10])) == list(range(COUNT)), "epoch 0 reads every image once"
    assert resumed == straight[12:], "the resumed run reads the batches the uninterrupted run read next"
    assert resumed != straight[10:12], "not the first batches of epoch 1, where a restarted stream would begin"
    reference, weights = (
        load_file(tmp_path / "straight" / "model.safetensors"),
        load_file(tmp_path / "resumed" / "model.safetensors"),
    )
    assert all(torch.equal(weights[name], reference[name]) for name in reference)


def test_shuffled_stream_resumes_after_what_it_consumed(stream_args, tmp_path, trained_ids):
    straight, resumed = straight_then_resumed([*stream_args, "--shuffle_buffer_size", "8"], tmp_path, trained_ids)
    consumed_in_epoch = set(ids(straight[10:12]))
    read_after_resume = ids(resumed)
    assert len(resumed) == 2 and len(read_after_resume) == 8
    # The examples waiting in the shuffle buffer are not replayed (a limit of the datasets state dict), but
    # nothing trained on before the checkpoint in this epoch is read again.
    assert consumed_in_epoch.isdisjoint(read_after_resume)


def test_resume_with_another_worker_count_is_refused(stream_args, tmp_path, trained_ids):
    main([*stream_args, "--max_steps", "12", "--output_dir", str(tmp_path / "run")])
    checkpoint = tmp_path / "run" / "checkpoint-12"
    resume = [*stream_args, "--output_dir", str(tmp_path / "run"), "--resume_from_checkpoint", str(checkpoint)]
    with pytest.raises(ValueError, match=r"1 process\(es\) x 2 DataLoader worker\(s\).*--dataloader_num_workers 2"):
        main([*resume, "--dataloader_num_workers", "1"])
    (checkpoint / STREAM_STATE_NAME.format(rank=0)).unlink()
    with pytest.raises(ValueError, match=r"holds no stream position.*--ignore_data_skip true"):
        main(resume)


def test_two_processes_resume_each_at_its_own_position(stream_args, tmp_path):
    """2 processes x 2 workers, one shard of 10 per worker: 6 batches per epoch (4, 4, 2 per worker), so
    checkpoint-12 ends epoch 1 and the resumed run starts epoch 2 afresh."""
    args = [*stream_args, "--shuffle_buffer_size", "0"]
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    script = REPO_ROOT / "run_smmix.py"
    straight = accelerate_launch(script, [*args, "--output_dir", str(tmp_path / "straight")], env)
    assert straight.returncode == 0, straight.stderr[-5000:]
    checkpoint = tmp_path / "resumed" / "checkpoint-12"
    shutil.copytree(tmp_path / "straight" / "checkpoint-12", checkpoint)
    assert {path.name for path in checkpoint.glob("stream_state_rank*.pth")} == {
        STREAM_STATE_NAME.format(rank=rank) for rank in (0, 1)
    }
    resume = [*args, "--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", str(checkpoint)]
    resumed = accelerate_launch(script, resume, env)
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    reference, weights = (load_file(tmp_path / run / "model.safetensors") for run in ("straight", "resumed"))
    assert all(torch.equal(weights[name], reference[name]) for name in reference)
