"""A frozen pre-trained motivator (paper Tab. 9): its scores and logits drive SMMix, it never trains."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from probing import probe_scores as own_scores
from tiny_data import digits_processor, digits_split
from tiny_models import tiny_swin, tiny_vit

from smmix_hf import SMMixTrainer
from smmix_hf.cli.train import main
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.motivator import Motivator, resample_score_grid

# What these runs share beyond conftest's make_config defaults.
RUN = dict(max_steps=3, learning_rate=1e-3, logging_steps=1, mixup_switch_prob=1.0)


def test_scores_and_clean_logits_come_from_the_motivator(make_config):
    torch.manual_seed(0)
    student, teacher = tiny_vit(), tiny_vit(patch_size=4, hidden_size=48)  # grids 4×4 and 8×8
    trainer = SMMixTrainer(model=student, args=make_config(**RUN), motivator=teacher)
    images = torch.randn(4, 3, 32, 32)
    assert trainer.task.scorer is trainer.task.motivator  # the motivator is the task's window scorer
    clean_logits, scores = trainer.task.scorer(images, trainer.task.probe.token_grid((32, 32)))
    teacher_scores, teacher_logits = own_scores(teacher, images)
    student_scores, _ = own_scores(student, images)
    assert teacher_scores.shape == (4, 8, 8) and scores.shape == (4, 4, 4)
    torch.testing.assert_close(scores, F.avg_pool2d(teacher_scores[:, None], 2)[:, 0])
    torch.testing.assert_close(clean_logits, teacher_logits)
    assert not torch.allclose(scores, student_scores)


def test_the_motivator_is_frozen_never_optimized_and_never_saved(tmp_path, make_config):
    torch.manual_seed(0)
    student, teacher = tiny_vit(), tiny_swin(window_size=8)  # another architecture: an 8×8 grid, no class token
    frozen = {name: value.clone() for name, value in teacher.state_dict().items()}
    trainer = SMMixTrainer(
        model=student,
        args=make_config(**RUN, save_strategy="steps", save_steps=3),
        motivator=teacher,
        train_dataset=digits_split("train", 24, True),
        data_collator=collate_image_batch,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3 and all(math.isfinite(entry["loss_con"]) for entry in logs)
    assert not teacher.training
    assert all(not parameter.requires_grad and parameter.grad is None for parameter in teacher.parameters())
    assert all(torch.equal(frozen[name], value) for name, value in teacher.state_dict().items())
    teacher_ids = {id(parameter) for parameter in teacher.parameters()}
    optimized = {id(parameter) for group in trainer.optimizer.param_groups for parameter in group["params"]}
    assert optimized and optimized.isdisjoint(teacher_ids)
    assert trainer.optimizer.state and teacher_ids.isdisjoint(id(key) for key in trainer.optimizer.state)
    saved = (tmp_path / "checkpoint-3" / "model.safetensors").read_bytes()
    assert b"swin" not in saved and b"embeddings.patch_embeddings" in saved


def test_class_counts_must_match_when_the_motivator_gives_the_consistency_target(make_config):
    with pytest.raises(ValueError, match="motivator predicts 5 classes but the model under training has 10"):
        SMMixTrainer(model=tiny_vit(), args=make_config(**RUN), motivator=tiny_vit(num_labels=5))
    trainer = SMMixTrainer(
        model=tiny_vit(), args=make_config(**RUN, consistency_loss_weight=0.0), motivator=tiny_vit(num_labels=5)
    )
    assert trainer.motivator.num_labels == 5


def test_a_motivator_needs_smmix(make_config):
    with pytest.raises(ValueError, match="a motivator drives SMMix only"):
        SMMixTrainer(model=tiny_vit(), args=make_config(**RUN, mix_method="cutmix"), motivator=tiny_vit())


def test_the_motivator_follows_the_students_dtype(make_config):
    student = tiny_vit().to(torch.bfloat16)
    trainer = SMMixTrainer(model=student, args=make_config(**RUN), motivator=tiny_vit())
    assert next(trainer.motivator.model.parameters()).dtype == torch.bfloat16


def test_a_motivator_with_another_input_size_sees_resized_images():
    torch.manual_seed(0)
    teacher = tiny_vit(image_size=64, patch_size=16)  # a 4×4 grid at 64 px
    images = torch.randn(2, 3, 32, 32)
    logits, scores = Motivator(teacher)(images, (4, 4))
    resized = F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    expected_scores, expected_logits = own_scores(teacher, resized)
    torch.testing.assert_close(scores, expected_scores)
    torch.testing.assert_close(logits, expected_logits)


def test_score_grids_are_resampled_by_adaptive_average_pooling():
    scores = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 8, 8)
    torch.testing.assert_close(resample_score_grid(scores, (4, 4)), F.avg_pool2d(scores[:, None], 2)[:, 0])
    coarse = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    expected = coarse.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    torch.testing.assert_close(resample_score_grid(coarse, (4, 4)), expected)
    assert resample_score_grid(scores, (8, 8)) is scores


def test_cli_motivator_model_from_a_local_directory(tmp_path):
    teacher_dir = tmp_path / "teacher"
    teacher = tiny_vit(patch_size=4, id2label={i: str(i) for i in range(10)})
    teacher.save_pretrained(teacher_dir)
    digits_processor().save_pretrained(teacher_dir)
    output_dir = tmp_path / "student"
    main(
        [
            "--model", "deit-tiny", "--from_scratch",
            "--config_overrides", "image_size=32,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2",
            "--motivator_model", str(teacher_dir), "--dataset_name", "sklearn-digits",
            "--max_train_samples", "16", "--max_eval_samples", "16", "--output_dir", str(output_dir), "--do_train",
            "--max_steps", "2", "--per_device_train_batch_size", "8", "--mixup_switch_prob", "1",
            "--save_strategy", "no",
            "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
        ]
    )  # fmt: skip
    assert f"| motivator | {teacher_dir} |" in (output_dir / "README.md").read_text()
