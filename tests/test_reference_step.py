"""SMMixTrainer.compute_loss against an independent plain SMMix step (tests/reference/smmix_step.py).

Deterministic setting: fixed side ratio 0.5 (Tab. 8's "0.5"), no Mixup, no dropout. The classifier is
scaled up so the clean predictions are confident and L_con is far from zero (a random model's L_con is
about 1e-4, which would hide errors in it).
"""

from __future__ import annotations

import copy

import pytest
import torch
from reference.smmix_step import reference_smmix_step, token_grid_of
from run_configs import short_run_config
from tiny_data import digits_split
from tiny_models import tiny_beit, tiny_deit, tiny_pvt, tiny_swin, tiny_vit

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch

BATCH = 8
TERMS = ("loss_cls", "loss_fine", "loss_con")


def confident(model: torch.nn.Module, steps: int = 30) -> torch.nn.Module:
    """Fit ``model`` briefly with plain CE on other digits, so its clean predictions are confident and differ
    between images: then L_con is far from zero and exposes errors in how it is wired."""
    data = collate_image_batch(list(digits_split("train", 32)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(pixel_values=data["pixel_values"]).logits, data["labels"]).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model


def fixed_batch(count: int = BATCH, offset: int = 0) -> dict[str, torch.Tensor]:
    split = digits_split("validation", offset + count)
    return collate_image_batch([split[i] for i in range(offset, offset + count)])


def reference_config(tmp_path, **overrides) -> SMMixConfig:
    settings = dict(
        per_device_train_batch_size=BATCH,
        mix_method="smmix",
        mixup_switch_prob=1.0,
        region_scale_min=0.5,
        region_scale_max=0.5,
    )
    return short_run_config(tmp_path, **{**settings, **overrides})


def trainer_step(trainer: SMMixTrainer, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss and logged terms of one compute_loss call, read through the Trainer's public log."""
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    trainer.log({"loss": float(loss.detach())})
    logged = trainer.state.log_history[-1]
    return {"loss": float(loss), **{name: logged[name] for name in TERMS if name in logged}}


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


BUILDERS = {
    "vit": lambda: tiny_vit(),
    "deit": lambda: tiny_deit(),
    "swin": lambda: tiny_swin(window_size=4, drop_path_rate=0.0),
    "pvt": lambda: tiny_pvt(drop_path_rate=0.0),
    "beit": lambda: tiny_beit(),  # relative position bias, layer scale, mean-pooled head; no dropout
}


def check_against_reference(tmp_path, model, motivator=None, **config):
    batch = fixed_batch()
    args = reference_config(tmp_path, **config)
    side = int(0.5 * token_grid_of(model, batch["pixel_values"].shape[-1])[0])
    weights = (args.cls_loss_weight, args.fine_loss_weight, args.consistency_loss_weight)

    reference_model = confident_copy = type(model)(model.config)
    confident_copy.load_state_dict(model.state_dict())
    reference_model.train()
    trainer = SMMixTrainer(model=model, args=args, motivator=motivator, data_collator=collate_image_batch)
    # The separate region head (region_head=separate) is created by the trainer; the reference gets a copy.
    trainer_head = getattr(model, "smmix_region_head", None)
    assert (trainer_head is not None) == (args.region_head == "separate")
    reference_head = None if trainer_head is None else copy.deepcopy(trainer_head)
    expected = reference_smmix_step(
        reference_model,
        batch["pixel_values"],
        batch["labels"],
        side,
        smoothing=args.label_smoothing_factor,
        weights=weights,
        consistency=args.consistency_target,
        motivator=motivator,
        region_linear=reference_head,
    )
    expected["loss"].backward()

    observed = trainer_step(trainer, batch)

    assert expected["loss_con"] > 0.05, "L_con must be large enough to expose wiring errors"
    for name in ("loss", *TERMS):
        assert observed[name] == pytest.approx(float(expected[name]), abs=1e-5), name
    reference_grads, observed_grads = gradients(reference_model), gradients(model)
    if reference_head is not None:
        reference_grads.update({f"smmix_region_head.{k}": v for k, v in gradients(reference_head).items()})
        assert observed_grads["smmix_region_head.weight"].abs().sum() > 0
    assert set(reference_grads) == set(observed_grads)
    for name, grad in reference_grads.items():
        torch.testing.assert_close(
            observed_grads[name], grad, rtol=1e-3, atol=1e-5, msg=lambda text, name=name: f"{name}: {text}"
        )


@pytest.mark.parametrize("architecture", sorted(BUILDERS))
def test_smmix_step_equals_the_reference(tmp_path, architecture):
    torch.manual_seed(0)
    check_against_reference(tmp_path, confident(BUILDERS[architecture]()))


def test_weights_and_probability_consistency_target_match_the_reference(tmp_path):
    torch.manual_seed(1)
    check_against_reference(
        tmp_path,
        confident(tiny_vit()),
        cls_loss_weight=0.7,
        fine_loss_weight=0.3,
        consistency_loss_weight=2.0,
        consistency_target="probs",
        label_smoothing_factor=0.2,
    )


def test_motivator_step_equals_the_reference(tmp_path):
    """Tab. 9: scores and clean logits come from a frozen motivator, the losses train the student."""
    torch.manual_seed(2)
    student = confident(tiny_vit())
    torch.manual_seed(3)
    motivator = confident(tiny_vit(hidden_size=48, num_attention_heads=3), steps=60).eval()
    check_against_reference(tmp_path, student, motivator=motivator)


@pytest.mark.parametrize("architecture", ["vit", "beit", "swin"])
def test_separate_region_head_step_equals_the_reference(tmp_path, architecture):
    """region_head=separate (the official code's second linear head): L_fine's region logits come from that
    head (after BEiT's pooler norm), the classifier gets no L_fine gradient, and the head trains."""
    torch.manual_seed(4)
    check_against_reference(tmp_path, confident(BUILDERS[architecture]()), region_head="separate")
