"""Every arm of the studies (``experiments/arms.py``), built as the runner builds it (``arm_trainer``), trains two
steps, and the setting that tells it apart took effect in those steps.

The references are outside the package: a plain loop over every window for the max-min choice (Eq. 7), the
image attention score (Eq. 6) from the model's eager attention, the ink of each patch from a reshape of the pixels,
and L_con's two targets from ``torch.softmax``. Each arm trains on canvas digits (the studies' data) with the
Mixup switch off, so both steps are window batches, and with learning rate 0, so the model the references read is
the one that placed the windows.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from smmix_hf.backbones.region_head import region_head_of
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.mix_examples import MixExample

# The studies live beside the package, in the checkout; pytest may run from elsewhere (scripts/mutation_check.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments.arms import VARIANTS
from experiments.canvas import place_on_canvas
from experiments.regime import REGIMES, build_model
from experiments.runner import arm_trainer

REGIME = REGIMES["canvas32"]
GRID = REGIME.canvas // REGIME.patch
BATCH = 8
EPOCHS = 4  # the arm's epoch budget: the 25% warm-up arms warm up for the first epoch


@dataclass
class Step:
    images: torch.Tensor
    method: str
    result: dict[str, torch.Tensor]
    example: MixExample | None

    @property
    def terms(self) -> set[str]:
        return {name for name in self.result if name.startswith("loss_")}


def canvas_rows(count: int) -> list[dict[str, torch.Tensor]]:
    """``count`` bundled digits on the regime's noisy canvas, normalised as the studies do (mean and std 0.5)."""
    digits = load_digits()
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        digit = Image.fromarray((digits.images[index] * 255 / 16).astype(np.uint8))
        canvas, _ = place_on_canvas(digit, REGIME.canvas, rng, REGIME.scale, REGIME.noise)
        pixels = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255).permute(2, 0, 1)
        rows.append({"pixel_values": (pixels - 0.5) / 0.5, "labels": int(digits.target[index])})
    return rows


def train_arm(variant: str, tmp_path) -> tuple[list[Step], torch.nn.Module, object]:
    torch.manual_seed(0)
    model = build_model(REGIME, width=32, layers=2)
    with torch.no_grad():  # confident predictions, so that L_con's two targets are far apart
        model.classifier.weight.mul_(50)
    config = dict(
        output_dir=str(tmp_path),
        region_sampling=REGIME.region_sampling,
        max_steps=2,
        learning_rate=0.0,
        per_device_train_batch_size=BATCH,
        mixup_switch_prob=1.0,
        use_cpu=True,
        logging_strategy="no",
    )
    trainer = arm_trainer(
        variant, "none", EPOCHS, model, config, train_dataset=canvas_rows(2 * BATCH), data_collator=collate_image_batch
    )
    task = trainer.task
    task.keep_mix_examples = True
    steps: list[Step] = []

    def record(module, inputs, result):
        example = task.last_mix_example if task.last_method == "smmix" else None
        detached = {name: value.detach() for name, value in result.items()}
        steps.append(Step(inputs[0].clone(), task.last_method, detached, example))

    task.register_forward_hook(record)
    trainer.train()
    assert len(steps) == 2
    return steps, model, trainer


# ---- references ----


def window_sums(scores: torch.Tensor, size: tuple[int, int]) -> dict[tuple[int, int], float]:
    """Every window of ``size`` that fits the grid, by its corner: the sum of its scores (a plain loop)."""
    rows, cols = scores.shape
    height, width = size
    return {
        (top, left): float(scores[top : top + height, left : left + width].sum())
        for top in range(rows - height + 1)
        for left in range(cols - width + 1)
    }


def source_windows_are_maxima(example: MixExample, scores: torch.Tensor) -> list[bool]:
    """Per sample: whether the window read from its source has the largest sum of ``scores`` (ties allowed)."""
    verdicts = []
    for sample, source in enumerate(example.source_index.tolist()):
        sums = window_sums(scores[source], example.region)
        chosen = sums[tuple(example.source_corner[sample].tolist())]
        verdicts.append(chosen >= max(sums.values()) - 1e-6)
    return verdicts


def target_windows_are_minima(example: MixExample, scores: torch.Tensor) -> list[bool]:
    verdicts = []
    for sample in range(len(example.source_index)):
        sums = window_sums(scores[sample], example.region)
        chosen = sums[tuple(example.target_corner[sample].tolist())]
        verdicts.append(chosen <= min(sums.values()) + 1e-6)
    return verdicts


def attention_scores(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Eq. 6 from the model's eager attention: the last block's attention among image tokens, averaged over heads
    and query rows, ``[B, g, g]``."""
    reference = copy.deepcopy(model).eval()
    reference.set_attn_implementation("eager")
    with torch.no_grad():
        attention = reference(pixel_values=images, output_attentions=True).attentions[-1]
    return attention[:, :, 1:, 1:].mean(dim=(1, 2)).reshape(-1, GRID, GRID)


def ink(images: torch.Tensor) -> torch.Tensor:
    """The mean pixel value of each patch, channels averaged, ``[B, g, g]``."""
    patch = REGIME.patch
    return images.float().mean(dim=1).reshape(-1, GRID, patch, GRID, patch).mean(dim=(2, 4))


def consistency_losses(step: Step) -> dict[str, float]:
    """L_con of the step against its two possible targets: mixed clean logits, or mixed clean probabilities."""
    example = step.example
    clean, source, share = example.clean_logits.float(), example.source_index, example.source_fraction
    targets = {
        "logits": torch.softmax(share * clean[source] + (1 - share) * clean, dim=-1),
        "probs": share * torch.softmax(clean[source], dim=-1) + (1 - share) * torch.softmax(clean, dim=-1),
    }
    log_mixed = torch.log_softmax(step.result["output"].float(), dim=-1)
    return {mode: float((target * (target.log() - log_mixed)).sum(dim=-1).mean()) for mode, target in targets.items()}


# ---- what tells each arm apart ----


def windows_follow_attention(steps: list[Step], model: torch.nn.Module) -> None:
    for step in steps:
        scores = attention_scores(model, step.images)
        assert all(source_windows_are_maxima(step.example, scores))
        assert all(target_windows_are_minima(step.example, scores))


def check_smmix(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
    assert [step.method for step in steps] == ["smmix", "smmix"]
    assert all(step.terms == {"loss_cls", "loss_fine", "loss_con"} for step in steps)
    windows_follow_attention(steps, model)
    for step in steps:
        losses = consistency_losses(step)
        assert step.result["loss_con"].item() == pytest.approx(losses["logits"], rel=1e-4)
        assert losses["logits"] != pytest.approx(losses["probs"], rel=1e-2)


def check_ink_oracle(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
    """The windows are the ink maxima (and minima), not the attention maxima; L_con keeps the model's own logits."""
    assert [step.method for step in steps] == ["smmix", "smmix"]
    attention_maxima = []
    for step in steps:
        assert all(source_windows_are_maxima(step.example, ink(step.images)))
        assert all(target_windows_are_minima(step.example, ink(step.images)))
        attention_maxima += source_windows_are_maxima(step.example, attention_scores(model, step.images))
        with torch.no_grad():
            own = model.eval()(pixel_values=step.images).logits
        model.train()
        torch.testing.assert_close(step.example.clean_logits, own)
    assert not all(attention_maxima), "the ink windows are where attention points anyway: the test shows nothing"


def check_random_windows(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
    assert [step.method for step in steps] == ["smmix", "smmix"]
    assert all(step.terms == {"loss_cls", "loss_fine", "loss_con"} for step in steps)
    maxima = [
        m for step in steps for m in source_windows_are_maxima(step.example, attention_scores(model, step.images))
    ]
    assert not all(maxima)


def terms(expected: set[str]) -> Callable[..., None]:
    def check(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
        assert [step.method for step in steps] == ["smmix", "smmix"]
        assert all(step.terms == expected for step in steps), [step.terms for step in steps]
        windows_follow_attention(steps, model)

    return check


def methods(expected: list[str], warmup_steps: tuple[int, ...] = ()) -> Callable[..., None]:
    """The steps' methods; the SMMix steps among ``warmup_steps`` are warm-up steps (no L_con)."""

    def check(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
        assert [step.method for step in steps] == expected
        for index in warmup_steps:
            assert steps[index].terms == {"loss_cls", "loss_fine"}, steps[index].terms

    return check


def check_probs(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
    for step in steps:
        losses = consistency_losses(step)
        assert step.result["loss_con"].item() == pytest.approx(losses["probs"], rel=1e-4)
        assert losses["probs"] != pytest.approx(losses["logits"], rel=1e-2)


def check_region_head(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
    head = region_head_of(model)
    assert head is not None and head is not model.classifier
    assert any(parameter is head.weight for parameter in model.parameters())
    assert all(step.terms == {"loss_cls", "loss_fine", "loss_con"} for step in steps)


def region_sides(trainer: object, draws: int = 200) -> set[int]:
    """The window sides of ``draws`` more draws of the arm's method (host-side draws only)."""
    task = trainer.task
    size = (REGIME.canvas, REGIME.canvas)
    return {task.method.draw(size, (GRID, GRID), task.position).region_size[0] for _ in range(draws)}


def check_delta_u01(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
    sides = region_sides(trainer)
    assert sides - set(range(int(0.25 * GRID), int(0.75 * GRID) + 1)), sides  # outside the paper's U(0.25, 0.75)


def check_delta_half(steps: list[Step], model: torch.nn.Module, trainer: object) -> None:
    assert [step.example.region for step in steps] == [(GRID // 2, GRID // 2)] * 2
    assert region_sides(trainer) == {GRID // 2}


CHECKS: dict[str, Callable[..., None]] = {
    "none": methods(["none", "none"]),
    "cutmix": methods(["cutmix", "cutmix"]),
    "smmix": check_smmix,
    "maxmin_only": terms({"loss_cls"}),
    "maxmin_con": terms({"loss_cls", "loss_con"}),
    "maxmin_fine": terms({"loss_cls", "loss_fine"}),
    "random_windows": check_random_windows,
    # the first epoch of 4 is the warm-up; the two steps are at epochs 0 and 0.5
    "smmix_warmup25": methods(["smmix", "smmix"], warmup_steps=(0, 1)),
    "smmix_warmup25_cutmix": methods(["cutmix", "cutmix"]),
    "smmix_warmup25_cutmix_random": methods(["cutmix", "smmix"], warmup_steps=(1,)),
    "smmix_probs": check_probs,
    "smmix_region_head": check_region_head,
    "delta_u01": check_delta_u01,
    "delta_half": check_delta_half,
    "smmix_ink_oracle": check_ink_oracle,
}


def test_every_arm_has_a_check():
    assert set(CHECKS) == set(VARIANTS)


@pytest.mark.parametrize("variant", list(CHECKS))
def test_one_step_of_each_arm_shows_its_setting(variant, tmp_path):
    steps, model, trainer = train_arm(variant, tmp_path)
    CHECKS[variant](steps, model, trainer)
