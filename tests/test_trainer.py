"""SMMixTrainer with real tiny transformers models on real digits: every method trains, GA is exact."""

from __future__ import annotations

import math

import pytest
import torch
from run_configs import short_run_config
from tiny_data import digits_split
from tiny_models import TINY_MODELS, tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.methods import MIX_METHODS

# The pairs a method refuses, with a one-line error, before training: TransMix reads the class token's attention
# in the mixed forward, which Swin lacks and the generic readers do not form.
REFUSED = {("transmix", "swin"), ("transmix", "transformers"), ("transmix", "timm")}


def make_config(tmp_path, **overrides) -> SMMixConfig:
    settings = dict(
        per_device_eval_batch_size=16,
        max_steps=3,
        motivation_warmup_mixing="random_windows",  # its first step is an SMMix batch (random windows, L_fine)
        learning_rate=1e-3,
        logging_steps=1,
    )
    return short_run_config(tmp_path, **{**settings, **overrides})


@pytest.mark.parametrize("architecture", sorted(TINY_MODELS))
@pytest.mark.parametrize("mix_method", MIX_METHODS)  # every registered method, a new one included
def test_every_architecture_trains_under_every_mix_method(tmp_path, architecture, mix_method):
    torch.manual_seed(0)
    model = TINY_MODELS[architecture]()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    args = make_config(tmp_path, mix_method=mix_method, mixup_switch_prob=1.0)
    try:
        trainer = SMMixTrainer(
            model=model, args=args, train_dataset=digits_split("train", 32, True), data_collator=collate_image_batch
        )
    except ValueError as refusal:  # a method may refuse a model it cannot read (TransMix: no class token)
        assert "\n" not in str(refusal) and type(model).__name__ in str(refusal), refusal
        assert (mix_method, architecture) in REFUSED, f"{mix_method} refused {architecture}: {refusal}"
        return
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3 and all(math.isfinite(entry["loss"]) for entry in logs)
    assert all(entry[f"mix_share_{mix_method}"] == 1.0 for entry in logs)
    expected_terms = {"loss_cls", "loss_fine", "loss_con"} if mix_method == "smmix" else {"loss_cls"}
    assert expected_terms <= set(logs[-1]) and all(math.isfinite(logs[-1][term]) for term in expected_terms)
    if mix_method != "smmix":
        assert "loss_fine" not in logs[-1]
    moved = [name for name, value in model.state_dict().items() if not torch.equal(before[name], value)]
    assert "classifier.weight" in moved and len(moved) > len(before) // 2


def test_smmix_loss_is_the_weighted_sum_of_its_terms(tmp_path):
    torch.manual_seed(0)
    args = make_config(
        tmp_path,
        mixup_switch_prob=1.0,
        cls_loss_weight=1.0,
        fine_loss_weight=0.5,
        consistency_loss_weight=2.0,
        motivation_warmup_ratio=0.0,  # the paper's step: L_con from the first step
        logging_steps=1,
        max_steps=1,
    )
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, train_dataset=digits_split("train", 8, True), data_collator=collate_image_batch
    )
    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert log["loss"] == pytest.approx(log["loss_cls"] + 0.5 * log["loss_fine"] + 2.0 * log["loss_con"], rel=1e-3)


def test_mixup_switch_prob_mixes_both_methods(tmp_path):
    args = make_config(tmp_path, mixup_switch_prob=0.5, max_steps=12, logging_steps=12)
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, train_dataset=digits_split("train", 96, True), data_collator=collate_image_batch
    )
    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert 0.0 < log["mix_share_mixup"] < 1.0
    assert log["mix_share_mixup"] + log["mix_share_smmix"] == pytest.approx(1.0)


@pytest.mark.parametrize("switch", ["max_min_regions", "fine_loss_weight", "consistency_loss_weight"])
def test_ablation_switches_train(tmp_path, switch):
    value = False if switch == "max_min_regions" else 0.0
    args = make_config(tmp_path, mixup_switch_prob=1.0, max_steps=2, **{switch: value})
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, train_dataset=digits_split("train", 16, True), data_collator=collate_image_batch
    )
    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    absent = {"fine_loss_weight": "loss_fine", "consistency_loss_weight": "loss_con"}.get(switch)
    assert math.isfinite(log["loss"]) and (absent is None or absent not in log)


def _weights_after_one_step(tmp_path, batch_size: int, accumulation: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = tiny_vit()
    args = make_config(
        tmp_path,
        mix_method="none",
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        optim="sgd",
        learning_rate=0.5,
        weight_decay=0.0,
        max_grad_norm=0.0,
        lr_scheduler_type="constant",
    )
    trainer = SMMixTrainer(
        model=model, args=args, train_dataset=digits_split("train", 16, True), data_collator=collate_image_batch
    )
    trainer.train()
    return {name: value.clone() for name, value in model.state_dict().items()}


def test_gradient_accumulation_matches_one_large_batch(tmp_path):
    torch.manual_seed(0)
    initial = tiny_vit().state_dict()
    large = _weights_after_one_step(tmp_path / "a", batch_size=16, accumulation=1)
    accumulated = _weights_after_one_step(tmp_path / "b", batch_size=8, accumulation=2)
    assert any(not torch.equal(large[name], initial[name]) for name in large)
    for name in large:
        torch.testing.assert_close(accumulated[name], large[name], rtol=1e-5, atol=1e-6, msg=name)


def test_evaluation_reports_top1_and_top5(tmp_path):
    args = make_config(tmp_path)
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, eval_dataset=digits_split("validation", 40), data_collator=collate_image_batch
    )
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_top1"] <= metrics["eval_top5"] <= 1.0
    assert math.isfinite(metrics["eval_loss"])


@pytest.mark.parametrize(("size", "message"), [(1, "even and >= 2"), (7, "even and >= 2")])
def test_odd_or_single_image_batches_are_rejected(tmp_path, size, message):
    with pytest.raises(ValueError, match=message):
        make_config(tmp_path, per_device_train_batch_size=size)
    assert make_config(tmp_path, per_device_train_batch_size=size, mix_method="none").mix_method == "none"


def test_an_odd_final_batch_still_trains(tmp_path):
    args = make_config(tmp_path, mixup_switch_prob=1.0, max_steps=-1, num_train_epochs=1)
    trainer = SMMixTrainer(
        model=tiny_vit(), args=args, train_dataset=digits_split("train", 11, True), data_collator=collate_image_batch
    )
    trainer.train()
    assert trainer.state.global_step == 2
