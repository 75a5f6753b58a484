"""SMMixTask, the step every loop calls: a plain loop equals SMMixTrainer, resumes exactly, reads nothing back from
the device, compiles, evaluates with plain cross-entropy and refuses bad use in one line.

The step itself is checked against the independent reference in tests/test_reference_step.py (HF models) and
tests/test_backbones_timm_vit_swin.py (timm models); here the outside references are the Trainer's own loop,
torch's cross-entropy and the dispatcher's record of host reads.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from tiny_data import digits_split
from tiny_models import tiny_vit
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import ResNetConfig, ResNetForImageClassification, TrainerCallback

from smmix_hf import MixSettings, SMMixTask, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch

BATCH = 8
STEPS = 6


def digit_batches(count: int, offset: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    split = digits_split("validation", offset + count * BATCH)
    batches = []
    for start in range(offset, offset + count * BATCH, BATCH):
        batch = collate_image_batch([split[i] for i in range(start, start + BATCH)])
        batches.append((batch["pixel_values"], batch["labels"]))
    return batches


class GradientRecorder(TrainerCallback):
    """The gradients the Trainer is about to apply, step by step."""

    def __init__(self) -> None:
        self.gradients: list[dict[str, torch.Tensor]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients.append({name: p.grad.detach().clone() for name, p in model.named_parameters()})


def test_a_plain_loop_equals_the_trainer_step_for_step_warm_up_included(make_config):
    """Same seed, model and batches: a plain loop over SMMixTask gives the Trainer's losses, terms and gradients.

    The warm-up covers the first half of the 6 steps: CutMix (steps 1-2), random windows (step 3), then max-min
    SMMix; Mixup batches come in between with probability 0.5."""
    torch.manual_seed(0)
    model = tiny_vit()
    args = make_config(
        max_steps=STEPS, learning_rate=0.05, max_grad_norm=0.0, motivation_warmup_ratio=0.5, logging_steps=1
    )
    trainer_model, loop_model = copy.deepcopy(model), copy.deepcopy(model)
    optimizer = torch.optim.SGD(trainer_model.parameters(), lr=0.05)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    recorder = GradientRecorder()
    trainer = SMMixTrainer(
        model=trainer_model,
        args=args,
        train_dataset=digits_split("train", STEPS * BATCH),
        data_collator=collate_image_batch,
        optimizers=(optimizer, constant),
        callbacks=[recorder],
    )
    seen: list[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], str]] = []

    def keep(task, inputs, output):
        seen.append((*(value.clone() for value in inputs), {k: v.detach().clone() for k, v in output.items()}, ""))
        seen[-1] = (*seen[-1][:3], task.last_method)

    trainer.task.register_forward_hook(keep)
    trainer.train()
    assert len(seen) == STEPS and len(recorder.gradients) == STEPS
    methods = [method for *_, method in seen]
    assert "smmix" in methods and "mixup" in methods, methods

    loop_model.train()
    # The task counts its own place: no position call, the same warm-up as the Trainer's.
    task = SMMixTask(
        loop_model, MixSettings.from_config(args), seed=args.seed, total_steps=STEPS, steps_per_epoch=STEPS
    )
    loop_optimizer = torch.optim.SGD(loop_model.parameters(), lr=0.05)
    for step, (images, labels, expected, method) in enumerate(seen):
        result = task(images, labels)
        assert task.last_method == method
        assert result.keys() == expected.keys(), step
        for name, value in expected.items():
            torch.testing.assert_close(result[name], value, rtol=0, atol=1e-6, msg=f"{name} at step {step + 1}")
        result["loss"].backward()
        for name, parameter in loop_model.named_parameters():
            torch.testing.assert_close(
                parameter.grad, recorder.gradients[step][name], rtol=0, atol=1e-6, msg=f"grad {name} step {step + 1}"
            )
        loop_optimizer.step()
        loop_optimizer.zero_grad()
    motivated = [method for step, method in enumerate(methods) if method == "smmix" and step >= STEPS // 2]
    assert motivated, f"no max-min SMMix step after the warm-up: {methods}"


def test_the_task_state_dict_resumes_the_draws_exactly():
    settings = MixSettings(motivation_warmup_ratio=0.0)
    torch.manual_seed(0)
    model = tiny_vit()
    batches = digit_batches(4)
    task = SMMixTask(copy.deepcopy(model), settings, seed=3)
    for images, labels in batches[:2]:
        task(images, labels)
    saved = copy.deepcopy(task.state_dict())
    assert "_extra_state" in saved, "the draws are part of the task's state_dict"
    expected = [task(images, labels)["loss"].detach() for images, labels in batches[2:]]

    restored = SMMixTask(copy.deepcopy(model), settings, seed=99)  # another seed: only the state can match
    restored.load_state_dict(saved)
    got = [restored(images, labels)["loss"].detach() for images, labels in batches[2:]]
    assert torch.equal(torch.stack(got), torch.stack(expected))
    fresh = SMMixTask(copy.deepcopy(model), settings, seed=99)
    assert not torch.equal(torch.stack([fresh(*batch)["loss"].detach() for batch in batches[2:]]), torch.stack(got))


class HostReads(TorchDispatchMode):
    """Records every operator that copies a value from a tensor to the host (``.item()``, ``bool(t)``, ``nonzero``)."""

    SYNCING: ClassVar[set[str]] = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "equal"}

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name.split("::")[-1] in self.SYNCING:
            self.reads.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("switch_prob", [1.0, 0.0], ids=["smmix", "mixup"])
def test_a_training_step_reads_nothing_back_from_the_device(switch_prob):
    torch.manual_seed(0)
    task = SMMixTask(tiny_vit(), MixSettings(mixup_switch_prob=switch_prob, motivation_warmup_ratio=0.0))
    images, labels = digit_batches(1)[0]
    with HostReads() as mode:
        result = task(images, labels)
        result["loss"].backward()
    assert task.last_method == ("smmix" if switch_prob else "mixup")
    assert mode.reads == [], mode.reads
    with HostReads() as mode:  # the recorder sees a host read when there is one
        float(result["loss"])
    assert mode.reads


@pytest.mark.parametrize("compiled", ["task", "model"])
def test_compiling_the_task_or_the_model_gives_the_same_step(compiled):
    torch._dynamo.reset()
    settings = MixSettings(mixup_switch_prob=1.0, motivation_warmup_ratio=0.0)
    torch.manual_seed(0)
    model = tiny_vit()
    images, labels = digit_batches(1)[0]
    expected = SMMixTask(copy.deepcopy(model), settings)(images, labels)
    task = SMMixTask(copy.deepcopy(model), settings)
    if compiled == "model":
        task.compile(backend="aot_eager")
        result = task(images, labels)
    else:
        result = torch.compile(task, backend="aot_eager")(images, labels)
    for name in ("loss", "loss_cls", "loss_fine", "loss_con"):
        torch.testing.assert_close(result[name], expected[name], rtol=1e-5, atol=1e-6)


def test_eval_mode_is_plain_cross_entropy_on_clean_images():
    torch.manual_seed(0)
    model = tiny_vit()
    task = SMMixTask(model).eval()
    images, labels = digit_batches(1)[0]
    result = task(images[:5], labels[:5])  # any batch size in evaluation
    logits = model(pixel_values=images[:5]).logits
    torch.testing.assert_close(result["output"], logits)
    torch.testing.assert_close(result["loss"], F.cross_entropy(logits, labels[:5]))
    assert set(result) == {"loss", "output"}


def test_the_warm_up_needs_the_run_length_or_a_position_and_says_both_in_one_line():
    task = SMMixTask(tiny_vit())  # default settings: a warm-up over the first 25% of the steps
    images, labels = digit_batches(1)[0]
    with pytest.raises(ValueError) as error:
        task(images, labels)
    assert "total_steps=N" in one_line(error) and "task.set_position(progress=...)" in one_line(error)
    task.set_position(progress=0.0)
    assert task(images, labels)["loss"].isfinite()
    by_epochs = SMMixTask(tiny_vit(), MixSettings(motivation_warmup_epochs=1.0), total_steps=10)
    with pytest.raises(ValueError) as error:
        by_epochs(images, labels)
    assert "steps_per_epoch=len(loader)" in one_line(error) and "task.set_position(epoch=...)" in one_line(error)
    with pytest.raises(ValueError, match="progress is the share of the run's steps done, in \\[0, 1\\]; got 3"):
        task.set_position(progress=3)
    with pytest.raises(ValueError, match="total_steps must be a whole number >= 1; got 0"):
        SMMixTask(tiny_vit(), total_steps=0)
    # the paper's schedule reads no position
    assert SMMixTask(tiny_vit(), MixSettings(motivation_warmup_ratio=0.0))(images, labels)["loss"].isfinite()


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_bad_use_gets_one_line_that_says_what_to_do():
    task = SMMixTask(tiny_vit(), MixSettings(motivation_warmup_ratio=0.0))
    images, labels = digit_batches(1)[0]
    soft = F.one_hot(labels, 10).float()
    with pytest.raises(ValueError) as error:
        task(images, soft)
    assert "hard integer class labels" in one_line(error) and "remove Mixup/CutMix" in one_line(error)
    with pytest.raises(ValueError) as error:
        task(images[:7], labels[:7])
    assert "must be even and >= 2; got 7" in one_line(error) and "drop_last=True" in one_line(error)
    with pytest.raises(ValueError) as error:
        task(images[0], labels)
    assert "[batch, channels, height, width]" in one_line(error)
    with pytest.raises(ValueError) as error:
        task(images, labels[:6])
    assert "8 images but 6 labels" in one_line(error)
    resnet = ResNetForImageClassification(ResNetConfig(num_labels=10, depths=[1], hidden_sizes=[8], embedding_size=8))
    with pytest.raises(ValueError) as error:
        SMMixTask(resnet)
    assert "does not support model_type 'resnet'" in one_line(error)
    with pytest.raises(TypeError, match=r"settings must be a smmix_hf\.MixSettings"):
        SMMixTask(tiny_vit(), {"mix_method": "smmix"})
    # A method that needs no attention trains any classifier, e.g. a ResNet with CutMix.
    cutmix = SMMixTask(resnet, MixSettings(mix_method="cutmix"))
    assert cutmix.probe is None and cutmix(images, labels)["loss"].isfinite()


@pytest.mark.parametrize("switch_prob", [1.0, 0.0], ids=["smmix", "mixup"])
def test_output_is_the_mixed_forwards_logits(switch_prob):
    """Loops compute their training metrics from ``output``: it is what the model returned for the mixed images
    (the second of SMMix's two forwards), not the clean logits of the motivated forward."""
    torch.manual_seed(0)
    model = tiny_vit()
    task = SMMixTask(model, MixSettings(mixup_switch_prob=switch_prob, motivation_warmup_ratio=0.0))
    task.keep_mix_examples = True
    calls: list[tuple[torch.Tensor, torch.Tensor, bool]] = []
    model.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(
            (kwargs["pixel_values"].clone(), output.logits.detach().clone(), module.training)
        ),
        with_kwargs=True,
    )
    images, labels = digit_batches(1)[0]
    result = task(images, labels)
    mixed_images, mixed_logits, training = calls[-1]
    assert training and len(calls) == (2 if switch_prob else 1)
    assert torch.equal(result["output"], mixed_logits)
    assert not torch.equal(mixed_images, images)
    if switch_prob:  # the images the mixed forward saw are the mixed batch the example shows
        torch.testing.assert_close(mixed_images, task.last_mix_example.mixed)
        assert not torch.allclose(result["output"], calls[0][1])
    with torch.no_grad():  # and the model itself gives those logits for those images
        torch.testing.assert_close(result["output"].detach(), model(pixel_values=mixed_images).logits)
