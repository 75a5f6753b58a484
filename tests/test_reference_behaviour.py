"""SMMixTrainer's behaviour seen from outside the trainer: model modes, forwards per step, and
gradient accumulation against the independent reference step (tests/reference/smmix_step.py)."""

from __future__ import annotations

import itertools

import torch
from reference.smmix_step import reference_smmix_step
from run_configs import short_run_config
from tiny_data import digits_split
from tiny_models import tiny_vit
from torch import nn
from torch.utils.data import IterableDataset

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch


def config(tmp_path, **overrides) -> SMMixConfig:
    settings = dict(
        per_device_train_batch_size=2,
        region_scale_min=0.5,
        region_scale_max=0.5,
        logging_steps=10_000,
    )
    if "motivation_warmup_epochs" not in overrides:  # the reference step is the paper's: no warm-up
        settings["motivation_warmup_ratio"] = 0.0
    return short_run_config(tmp_path, **{**settings, **overrides})


class ForwardRecorder:
    """Records, for every forward of ``model``, whether the model and its dropout layers were training."""

    def __init__(self, model: nn.Module) -> None:
        self.calls: list[tuple[int, bool, bool]] = []  # (step, model.training, any dropout training)
        self.step = 0
        self.dropouts = [module for module in model.modules() if isinstance(module, nn.Dropout)]
        model.register_forward_pre_hook(self._record)

    def _record(self, module: nn.Module, inputs: tuple) -> None:
        self.calls.append((self.step, module.training, any(dropout.training for dropout in self.dropouts)))


def test_motivated_forward_is_eval_mixed_forward_is_train(tmp_path):
    torch.manual_seed(0)
    model = tiny_vit(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    recorder = ForwardRecorder(model)
    trainer = SMMixTrainer(
        model=model,
        args=config(tmp_path, mixup_switch_prob=1.0, max_steps=3),
        train_dataset=digits_split("train", 16, True),
        data_collator=collate_image_batch,
    )
    trainer.train()
    assert len(recorder.calls) == 6, "an SMMix step is one motivated and one mixed forward"
    for first, second in zip(recorder.calls[::2], recorder.calls[1::2], strict=True):
        assert first[1:] == (False, False), "the motivated forward runs in eval mode, dropout off"
        assert second[1:] == (True, True), "the mixed forward runs in train mode, dropout on"
    assert model.training and all(dropout.training for dropout in recorder.dropouts)


def test_smmix_share_over_300_steps_follows_mixup_switch_prob(tmp_path):
    """``mixup_switch_prob`` is the probability of SMMix, Mixup otherwise (the official code's ``switch_prob``:
    SMMix when ``rand() < switch_prob``). SMMix steps do two forwards (eval, then train), Mixup steps one
    (train); 300 compute_loss calls."""
    switch_prob = 0.7
    torch.manual_seed(0)
    model = tiny_vit(num_hidden_layers=1, hidden_size=16, intermediate_size=32)
    trainer = SMMixTrainer(
        model=model, args=config(tmp_path, mixup_switch_prob=switch_prob), data_collator=collate_image_batch
    )
    batch = collate_image_batch([digits_split("validation", 2)[i] for i in range(2)])
    modes: list[bool] = []
    model.register_forward_pre_hook(lambda module, inputs: modes.append(module.training))
    model.train()
    for _ in range(300):
        trainer.compute_loss(model, batch)
    smmix_steps = sum(1 for before, after in itertools.pairwise(modes) if not before and after)
    mixup_steps = sum(modes) - smmix_steps
    assert smmix_steps + mixup_steps == 300 and len(modes) == 2 * smmix_steps + mixup_steps
    assert abs(smmix_steps / 300 - switch_prob) <= 0.07  # 2.7 standard deviations


def train_on_digits(tmp_path, digits: int = 16, **overrides) -> tuple[nn.Module, SMMixTrainer, list[bool]]:
    """Trains the tiny ViT (seed 0) on ``digits`` training digits with ``config(**overrides)``, logging every step;
    returns the model, the trainer and the train / eval mode of each forward of the model."""
    torch.manual_seed(0)
    model = tiny_vit()
    args = config(tmp_path, logging_steps=1, **overrides)
    trainer = SMMixTrainer(
        model=model, args=args, train_dataset=digits_split("train", digits, True), data_collator=collate_image_batch
    )
    modes: list[bool] = []
    model.register_forward_pre_hook(lambda module, inputs: modes.append(module.training))
    trainer.train()
    return model, trainer, modes


def test_motivation_warmup_uses_random_windows_without_the_motivated_forward_then_max_min(tmp_path):
    """``motivation_warmup_mixing="random_windows"``: epoch 0 of 2 is the warm-up, one (train-mode) forward per step,
    L_fine and no L_con; epoch 1: both forwards, as the paper."""
    _, trainer, modes = train_on_digits(
        tmp_path,
        digits=4,
        mixup_switch_prob=1.0,
        num_train_epochs=2,
        motivation_warmup_epochs=1,
        motivation_warmup_mixing="random_windows",
    )
    assert modes == [True, True, False, True, False, True]  # 2 steps per epoch; eval-mode motivated forwards later
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert ["loss_con" in entry for entry in logs] == [False, False, True, True]
    assert all("loss_fine" in entry for entry in logs)


def test_default_motivation_warmup_is_the_first_quarter_of_the_steps(tmp_path):
    """The default: steps 0-1 of 8 (progress 0 and 0.125 < 0.25) are the warm-up, one train-mode forward and no
    L_con: step 0 (the first half) a CutMix batch, step 1 random SMMix windows with L_fine; steps 2-7 are the
    paper's SMMix step, an eval-mode motivated forward and L_con."""
    _, trainer, modes = train_on_digits(
        tmp_path, digits=8, mixup_switch_prob=1.0, max_steps=8, motivation_warmup_ratio=None
    )
    assert modes == [True, True] + [False, True] * 6
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert ["loss_con" in entry for entry in logs] == [False, False] + [True] * 6
    assert ["loss_fine" in entry for entry in logs] == [False] + [True] * 7
    assert [next(key for key in entry if key.startswith("mix_share")) for entry in logs] == (
        ["mix_share_cutmix"] + ["mix_share_smmix"] * 7
    )


def assert_same_parameters(ours: nn.Module, theirs: nn.Module) -> None:
    for (name, mine), other in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(mine, other), name


def test_a_cutmix_warmup_trains_exactly_as_cutmix_then_as_smmix(tmp_path):
    """``motivation_warmup_mixing="cutmix"``: through the warm-up (epoch 0 of 2, Mixup alternating at p = 0.5) an
    SMMix run draws and trains as a CutMix run of the same seed, to the bit; then it is the paper's SMMix step."""

    cutmix, _, _ = train_on_digits(tmp_path, num_train_epochs=1, mix_method="cutmix")
    warmup = dict(mix_method="smmix", motivation_warmup_epochs=1, motivation_warmup_mixing="cutmix")
    warmed, trainer, modes = train_on_digits(tmp_path, num_train_epochs=1, **warmup)
    assert_same_parameters(warmed, cutmix)
    shares = [{key for key in entry if key.startswith("mix_share")} for entry in trainer.state.log_history[:-1]]
    assert set().union(*shares) == {"mix_share_cutmix", "mix_share_mixup"} and all(modes)

    # 8 steps an epoch
    _, trainer, modes = train_on_digits(tmp_path, num_train_epochs=2, mixup_switch_prob=1.0, **warmup)
    assert modes == [True] * 8 + [False, True] * 8  # motivated forwards only after the warm-up
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert ["loss_con" in entry for entry in logs] == [False] * 8 + [True] * 8
    assert [next(key for key in entry if key.startswith("mix_share")) for entry in logs] == (
        ["mix_share_cutmix"] * 8 + ["mix_share_smmix"] * 8
    )


def test_a_cutmix_then_random_windows_warmup_is_cutmix_then_random_windows_then_smmix(tmp_path):
    """``motivation_warmup_mixing="cutmix_then_random_windows"`` with a 2-epoch warm-up: epoch 0 trains as a CutMix
    run of the same seed, to the bit; epoch 1 has random SMMix windows with L_fine and no motivated forward or
    L_con; epoch 2 is the paper's SMMix step."""

    warmup = dict(mix_method="smmix", motivation_warmup_epochs=2, motivation_warmup_mixing="cutmix_then_random_windows")
    cutmix, _, _ = train_on_digits(tmp_path, num_train_epochs=1, mix_method="cutmix")
    # the 1-epoch run is all in the warm-up's CutMix half
    warmed, _, _ = train_on_digits(tmp_path, num_train_epochs=1, **warmup)
    assert_same_parameters(warmed, cutmix)

    # 8 steps an epoch
    _, trainer, modes = train_on_digits(tmp_path, num_train_epochs=3, mixup_switch_prob=1.0, **warmup)
    assert modes == [True] * 16 + [False, True] * 8  # motivated forwards only after the warm-up
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [next(key for key in entry if key.startswith("mix_share")) for entry in logs] == (
        ["mix_share_cutmix"] * 8 + ["mix_share_smmix"] * 16
    )
    assert ["loss_fine" in entry for entry in logs] == [False] * 8 + [True] * 16
    assert ["loss_con" in entry for entry in logs] == [False] * 16 + [True] * 8


def test_a_given_motivator_places_the_windows_from_the_first_step(tmp_path):
    """With a trained motivator (Tab. 9) the default has no warm-up: step 0 already runs the motivator's
    forward (eval mode) and logs L_con."""
    torch.manual_seed(0)
    model, motivator = tiny_vit(), tiny_vit()
    args = config(tmp_path, mixup_switch_prob=1.0, max_steps=1, logging_steps=1, motivation_warmup_ratio=None)
    trainer = SMMixTrainer(
        model=model,
        args=args,
        motivator=motivator,
        train_dataset=digits_split("train", 2, True),
        data_collator=collate_image_batch,
    )
    calls: list[bool] = []
    motivator.register_forward_pre_hook(lambda module, inputs: calls.append(module.training))
    trainer.train()
    assert calls == [False]
    assert "loss_con" in next(entry for entry in trainer.state.log_history if "loss" in entry)


class InOrder(IterableDataset):
    """Yields examples in a fixed order, so the micro-batches of an accumulated step are known."""

    def __init__(self, examples: list[dict]) -> None:
        self.examples = examples

    def __iter__(self):
        yield from self.examples


def test_gradient_accumulation_equals_the_mean_of_reference_micro_batch_gradients(tmp_path):
    torch.manual_seed(0)
    model = tiny_vit()
    initial = {name: value.detach().clone() for name, value in model.named_parameters()}
    examples = [digits_split("validation", 8)[i] for i in range(8)]
    micro_batches = [collate_image_batch(examples[:4]), collate_image_batch(examples[4:])]

    expected = {name: torch.zeros_like(value) for name, value in initial.items()}
    for batch in micro_batches:
        twin = tiny_vit()
        twin.load_state_dict(model.state_dict())
        twin.train()
        reference_smmix_step(twin, batch["pixel_values"], batch["labels"], region_side=2)["loss"].backward()
        for name, parameter in twin.named_parameters():
            expected[name] += parameter.grad / len(micro_batches)

    args = config(
        tmp_path,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        mixup_switch_prob=1.0,
        max_steps=1,
        optim="sgd",
        learning_rate=1.0,
        weight_decay=0.0,
        max_grad_norm=0.0,
        lr_scheduler_type="constant",
    )
    trainer = SMMixTrainer(model=model, args=args, train_dataset=InOrder(examples), data_collator=collate_image_batch)
    trainer.train()
    for name, parameter in model.named_parameters():
        applied = initial[name] - parameter.detach()  # SGD, lr 1: the step is the gradient
        torch.testing.assert_close(
            applied, expected[name], rtol=1e-3, atol=1e-6, msg=lambda text, name=name: f"{name}: {text}"
        )
