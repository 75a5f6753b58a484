"""The task's own place in its run (``SMMixTask(total_steps=, steps_per_epoch=, accumulation_steps=)``), against the
places the ``transformers`` Trainer and Lightning count for the same run: epoch and progress each on its own clock,
gradient accumulation (a call is a micro-batch, progress counts optimizer steps, an epoch's last optimizer step takes
what is left), the warm-up ending where the Trainer's does, and the count resuming from a checkpoint.
"""

from __future__ import annotations

import copy
import math

import lightning as L
import pytest
import torch
from tiny_data import digits_split
from tiny_models import tiny_vit
from torch.utils.data import DataLoader, TensorDataset

from smmix_hf import MixSettings, SMMixTask, SMMixTrainer
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.methods import RunPosition

BATCH = 8

# (gradient accumulation, batches per epoch, how long, warm-up): each warm-up ends inside an epoch, where counting
# calls instead of optimizer steps (or the calls of the whole run instead of the epoch's) would end it elsewhere.
RUNS = {
    # 2 epochs of 5 batches, optimizer steps of 2, 2 and 1 batches: max_steps 6. The first 34% is 3 optimizer
    # steps, 5 calls (a count of calls, 34% of 10, would give 4).
    "accumulation_ratio": (2, 5, {"num_train_epochs": 2}, {"motivation_warmup_ratio": 0.34}),
    # The Trainer's epoch moves when an optimizer step ends: calls 0-3 of epoch 0 are at epochs 0, 0, 0.4, 0.4, so
    # a warm-up of half an epoch is 4 calls (5 calls would be 2.5 of them).
    "accumulation_epochs": (2, 5, {"num_train_epochs": 2}, {"motivation_warmup_epochs": 0.5}),
    # 3 batches an epoch, 7 steps: 3 epochs, where progress (s / 7) and epoch (s / 3) differ.
    "max_steps": (1, 3, {"max_steps": 7}, {"motivation_warmup_ratio": 0.3}),
}


@pytest.mark.parametrize("run", list(RUNS))
def test_the_task_counts_the_run_as_the_trainer_does(run, make_config):
    accumulation, batches, length, warmup = RUNS[run]
    torch.manual_seed(0)
    model = tiny_vit()
    args = make_config(
        gradient_accumulation_steps=accumulation,
        mixup_switch_prob=1.0,
        motivation_warmup_mixing="cutmix",  # warm-up batches are CutMix batches, the rest SMMix
        learning_rate=0.0,
        **length,
        **warmup,
    )
    trainer = SMMixTrainer(
        model=copy.deepcopy(model),
        args=args,
        train_dataset=digits_split("train", batches * BATCH),
        data_collator=collate_image_batch,
    )
    calls: list[tuple[RunPosition, torch.Tensor, torch.Tensor]] = []
    methods: list[str] = []
    trainer.task.register_forward_pre_hook(
        lambda task, inputs: calls.append((RunPosition.of(trainer.state), *(x.clone() for x in inputs)))
    )
    trainer.task.register_forward_hook(lambda task, inputs, output: methods.append(task.last_method))
    trainer.train()
    assert len(calls) == len(methods) == {"accumulation_ratio": 10, "accumulation_epochs": 10, "max_steps": 7}[run]
    optimizer_steps = length.get("max_steps") or length["num_train_epochs"] * math.ceil(batches / accumulation)
    assert trainer.state.max_steps == optimizer_steps  # the run length a loop computes is the Trainer's

    task = SMMixTask(
        model,
        MixSettings.from_config(args),
        seed=args.seed,
        total_steps=optimizer_steps,
        steps_per_epoch=batches,
        accumulation_steps=accumulation,
    )
    got = []
    for index, (expected, images, labels) in enumerate(calls):
        assert (task.position.epoch, task.position.progress) == (expected.epoch, expected.progress), index
        task(images, labels)
        got.append(task.last_method)
    assert got == methods
    first_smmix = methods.index("smmix")
    assert set(methods[:first_smmix]) == {"cutmix"} and set(methods[first_smmix:]) == {"smmix"}
    expected_end = {"accumulation_ratio": 5, "accumulation_epochs": 4, "max_steps": 3}[run]
    assert first_smmix == expected_end, methods
    epochs_seen = {int(position.epoch) for position, *_ in calls}
    assert len(epochs_seen) > 1, "a run of several epochs"


def test_the_count_resumes_from_the_state_dict_and_the_task_state():
    """Three calls, saved, loaded into a fresh task: the next three calls are the uninterrupted run's (the warm-up
    covers the first half of the 6 steps, so a count that restarts at 0 would repeat the warm-up)."""
    settings = MixSettings(mixup_switch_prob=1.0, motivation_warmup_ratio=0.5, motivation_warmup_mixing="cutmix")
    torch.manual_seed(0)
    model = tiny_vit()
    split = digits_split("validation", 6 * BATCH)
    batches = [collate_image_batch([split[i] for i in range(s, s + BATCH)]) for s in range(0, 6 * BATCH, BATCH)]
    batches = [(batch["pixel_values"], batch["labels"]) for batch in batches]

    straight = SMMixTask(copy.deepcopy(model), settings, total_steps=6)
    expected = []
    for images, labels in batches:
        straight(images, labels)
        expected.append(straight.last_method)
    assert expected == ["cutmix"] * 3 + ["smmix"] * 3

    first = SMMixTask(copy.deepcopy(model), settings, total_steps=6)
    for images, labels in batches[:3]:
        first(images, labels)
    for save, load in (("state_dict", "load_state_dict"), ("get_task_state", "load_task_state")):
        resumed = SMMixTask(copy.deepcopy(model), settings, total_steps=6)
        getattr(resumed, load)(copy.deepcopy(getattr(first, save)()))
        assert resumed.position == first.position, save
        got = []
        for images, labels in batches[3:]:
            resumed(images, labels)
            got.append(resumed.last_method)
        assert got == expected[3:], save


class Recorder(L.LightningModule):
    """The Lightning example's module: the run's length read once in ``on_fit_start``, no position call in the
    step; it records the task's progress beside Lightning's own count of optimizer steps."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.task = SMMixTask(model, MixSettings())
        self.seen: list[tuple[float, float]] = []

    def on_fit_start(self) -> None:
        trainer = self.trainer
        self.task.set_run_length(
            total_steps=trainer.estimated_stepping_batches,
            steps_per_epoch=trainer.num_training_batches,
            accumulation_steps=trainer.accumulate_grad_batches,
        )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        lightning = self.global_step / self.trainer.estimated_stepping_batches
        self.seen.append((self.task.position.progress, lightning))
        return self.task(*batch)["loss"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.task.model.parameters(), lr=0.0)


def test_progress_is_lightnings_global_step_over_its_estimated_stepping_batches(tmp_path):
    torch.manual_seed(0)
    model = tiny_vit()
    size = model.config.image_size
    data = TensorDataset(torch.randn(5 * BATCH, 3, size, size), torch.randint(0, 10, (5 * BATCH,)))
    module = Recorder(model)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        accumulate_grad_batches=2,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(data, batch_size=BATCH))
    assert len(module.seen) == 10 and trainer.global_step == 6
    for index, (ours, lightning) in enumerate(module.seen):
        assert ours == lightning, (index, module.seen)
