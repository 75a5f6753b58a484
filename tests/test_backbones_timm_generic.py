"""Every timm model of ``TIMM_TESTED`` (smmix_hf/backbones/timm_attention.py), read without a file of its own: its
score equals the softmax timm forms, read through torch.fx on an unfused copy (``timm.utils.AttentionExtract``),
then Eq. 6 (tests/reference/timm_attention.py); its region logits go through the model's own head; a whole SMMix
step through ``SMMixTask`` equals the reference step, raw and inside ``TimmWrapperForImageClassification``.

Deterministic setting as in tests/test_backbones_timm_vit_swin.py: side ratio 0.5, every batch SMMix, no warm-up;
the models are fitted briefly so that L_con is far from zero.
"""

from __future__ import annotations

import copy
import math

import pytest
import timm
import torch
import torch.nn.functional as F
from reference.timm_attention import (
    assert_timm_region_logits_follow_the_head,
    eq6_scores,
    logits_of,
    reference_timm_smmix_step,
    timm_module,
    unfused_attention,
)
from run_configs import deterministic_task_step
from tiny_data import digits_split
from tiny_models import timm_model

from smmix_hf.backbones import backbone_for, resolve_model_name
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.backbones.timm_attention import TIMM_TESTED, TimmAttentionBackbone
from smmix_hf.backbones.timm_vit import TimmDeiTDistilledBackbone
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.methods import MixSettings
from smmix_hf.task import SMMixTask

BATCH, CLASSES, GRID = 8, 10, 4
TERMS = ("loss", "loss_cls", "loss_fine", "loss_con")
TESTED = {label: (architecture, args) for label, architecture, args in TIMM_TESTED}
LABELS = sorted(TESTED)
# The wrapped copies of the whole step: one per timm class (ViTamin is a VisionTransformer; its stem is the slow part).
WRAPPED_STEPS = ("vit-reg4-dinov2", "eva02", "beit")
SLOW_STEPS = ("vitamin",)


def build(label: str, kind: str = "raw", **overrides: object) -> torch.nn.Module:
    """The tiny model of ``label``, raw or inside TimmWrapperForImageClassification, SDPA in every block."""
    architecture, args = TESTED[label]
    return timm_model(architecture, {**args, **overrides}, kind, CLASSES)


def side(label: str) -> int:
    return int(TESTED[label][1]["img_size"])


def digits(split: str, count: int, size: int) -> dict[str, torch.Tensor]:
    batch = collate_image_batch(list(digits_split(split, count)))
    if size != batch["pixel_values"].shape[-1]:
        batch["pixel_values"] = F.interpolate(batch["pixel_values"], size=(size, size), mode="bilinear")
    return batch


def fused_everywhere(model: torch.nn.Module) -> bool:
    return all(module.fused_attn for module in model.modules() if hasattr(module, "fused_attn"))


# ---- which class reads which model ----


@pytest.mark.parametrize("kind", ("raw", "wrapped"))
@pytest.mark.parametrize("label", LABELS)
def test_the_generic_path_reads_every_tested_model(label, kind):
    model = build(label, kind)
    adapter = backbone_for(model)
    assert type(adapter) is TimmAttentionBackbone
    assert adapter.num_prefix_tokens == timm_module(model).num_prefix_tokens
    assert adapter.token_grid((side(label), side(label))) == (GRID, GRID)
    assert adapter.declared_image_size() == (side(label), side(label))


def test_the_families_with_a_file_of_their_own_are_matched_first():
    distilled = timm.create_model("deit_tiny_distilled_patch16_224", num_classes=CLASSES, **TESTED["deit"][1])
    assert type(backbone_for(distilled)) is TimmDeiTDistilledBackbone
    assert backbone_for(distilled).num_prefix_tokens == 2
    assert resolve_model_name("timm-deit-small") == "timm/deit_small_patch16_224.fb_in1k"
    assert resolve_model_name("timm-eva02-tiny") == "timm/eva02_tiny_patch14_224.mim_in22k"


# ---- score (Eq. 6) and region logits (Eq. 10-13) against the reference ----


@pytest.mark.parametrize("kind", ("raw", "wrapped"))
@pytest.mark.parametrize("label", LABELS)
def test_score_equals_the_softmax_timm_forms(label, kind):
    torch.manual_seed(0)
    model, images = build(label, kind), torch.randn(3, 3, side(label), side(label))
    with torch.no_grad():  # move the norms off their identity initialisation (qk_norm, final norm, fc_norm)
        for name, parameter in timm_module(model).named_parameters():
            if "norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    logits, scores = SMMixProbe(model).motivated_forward(images)
    expected_logits, expected = eq6_scores(model, images)
    assert fused_everywhere(model), "the last block's fused kernel must come back after the motivated forward"
    assert scores.shape == (3, GRID, GRID)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-5, atol=1e-6)


def test_the_training_forward_keeps_the_fused_kernel_in_the_last_block():
    model = build("eva02").train()
    calls = []
    model.blocks[-1].attn.attn_drop.register_forward_hook(lambda *args: calls.append(1))
    probe = SMMixProbe(model)
    model(torch.randn(2, 3, 32, 32))
    assert calls == []
    probe.motivated_forward(torch.randn(2, 3, 32, 32))
    assert calls == [1] and model.training and fused_everywhere(model)


@pytest.mark.parametrize("label", LABELS)
def test_region_logits_go_through_what_the_model_applies_to_its_pooled_feature(label):
    torch.manual_seed(0)
    model, images = build(label).eval(), torch.randn(2, 3, side(label), side(label))
    mask = torch.zeros(2, GRID, GRID, dtype=torch.bool)
    mask[0, :2, :2] = True
    mask[1, 1:, 2:] = True
    assert_timm_region_logits_follow_the_head(model, images, mask)


def test_transmix_class_attention_equals_the_class_tokens_softmax_row():
    """TransMix reads the class token's attention with gradients from the plain Attention's qkv (q_norm included)."""
    torch.manual_seed(0)
    model, images = build("vit"), torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.q_norm.weight.add_(0.5 * torch.randn_like(block.attn.q_norm.weight))
    probe = SMMixProbe(model)
    with probe.reading_class_attention((32, 32)):
        model.eval()(images)
    _, probs, _ = unfused_attention(model, images)
    torch.testing.assert_close(probe.take_class_attention(), probs[:, :, 0, 1:].mean(dim=1), rtol=1e-5, atol=1e-7)


# ---- one whole SMMix step against the reference ----


def confident(model: torch.nn.Module, size: int, steps: int = 30) -> torch.nn.Module:
    """Fit briefly with plain CE so clean predictions are confident and differ (L_con far from zero)."""
    data = digits("train", 32, size)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(logits_of(model, data["pixel_values"]), data["labels"]).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model


def task_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    out = deterministic_task_step(model, images, labels)
    return {name: float(out[name].detach()) for name in TERMS}


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in timm_module(model).named_parameters() if p.grad is not None}


# ViTamin's convolutional stem makes its fitted step the slowest by far: `make test-full` runs it.
STEP_CASES = [
    pytest.param(label, "raw", marks=[pytest.mark.full] if label in SLOW_STEPS else []) for label in LABELS
] + [(label, "wrapped") for label in WRAPPED_STEPS]


@pytest.mark.parametrize(("label", "kind"), STEP_CASES)
def test_smmix_task_step_equals_the_reference(label, kind):
    torch.manual_seed(0)
    model = confident(build(label, kind), side(label))
    reference_model = copy.deepcopy(model)
    batch = digits("validation", BATCH, side(label))
    images, labels = batch["pixel_values"], batch["labels"]

    expected = reference_timm_smmix_step(reference_model.train(), images, labels, GRID // 2, CLASSES)
    expected["loss"].backward()
    observed = task_step(model, images, labels)

    assert expected["loss_con"] > 0.05, "L_con must be large enough to expose wiring errors"
    for name in TERMS:
        assert observed[name] == pytest.approx(float(expected[name].detach()), abs=1e-5), name
    reference_grads, observed_grads = gradients(reference_model), gradients(model)
    assert set(reference_grads) == set(observed_grads)
    for name, grad in reference_grads.items():
        torch.testing.assert_close(
            observed_grads[name], grad, rtol=1e-4, atol=1e-5, msg=lambda text, name=name: f"{name}: {text}"
        )


@pytest.mark.parametrize("label", SLOW_STEPS)
def test_the_slow_ones_take_an_unfitted_smmix_task_step(label):
    torch.manual_seed(0)
    model = build(label)
    batch = digits("validation", BATCH, side(label))
    observed = task_step(model, batch["pixel_values"], batch["labels"])
    assert all(math.isfinite(value) for value in observed.values()) and observed["loss_fine"] > 0
    assert model.head.weight.grad is not None and fused_everywhere(model)


# ---- the size of the model as built (issue: create_model(img_size=...) leaves pretrained_cfg at 224) ----


@pytest.mark.parametrize(
    ("architecture", "args"),
    [
        ("deit_tiny_patch16_224", dict(img_size=36, patch_size=6, embed_dim=32, depth=2, num_heads=2)),
        ("vit_small_patch14_reg4_dinov2", dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)),
    ],
)
def test_a_model_built_at_another_size_trains_at_that_size(architecture, args):
    torch.manual_seed(0)
    model = timm.create_model(architecture, num_classes=CLASSES, **args)
    size = args["img_size"]
    assert model.pretrained_cfg["input_size"][-1] != size  # what the size used to be read from
    batch = digits("train", BATCH, size)
    settings = MixSettings(mixup_switch_prob=1.0, motivation_warmup_ratio=0.0)
    task = SMMixTask(model, settings=settings, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(2):
        optimizer.zero_grad()
        out = task(batch["pixel_values"], batch["labels"])
        out["loss"].backward()
        optimizer.step()
        assert torch.isfinite(out["loss"]) and float(out["loss_fine"]) > 0
    grid = size // args["patch_size"]
    assert task.probe.token_grid((size, size)) == (grid, grid)


# ---- what is refused, in one line ----


@pytest.mark.parametrize(
    ("label", "overrides", "message"),
    [
        ("vit", {"global_pool": "map"}, r"global_pool='map'; build it with global_pool='token' or 'avg'"),
        ("eva02", {"global_pool": "max"}, r"global_pool='max'"),
        ("vit-avg", {"pool_include_prefix": True}, r"pool_include_prefix=True"),
        ("deit3", {"num_classes": 0}, "without a classifier head"),
    ],
)
def test_heads_without_a_region_mean_are_refused(label, overrides, message):
    architecture, args = TESTED[label]
    model = timm.create_model(architecture, pretrained=False, **{"num_classes": CLASSES, **args, **overrides})
    with pytest.raises(ValueError, match=message):
        backbone_for(model)


def test_a_capture_that_is_not_softmax_probabilities_is_refused():
    adapter = backbone_for(build("vit-reg4-dinov2"))
    probabilities = torch.softmax(torch.randn(2, 2, 21, 21), dim=-1)
    assert adapter.scores_from_captures([probabilities], (32, 32)).shape == (2, GRID, GRID)
    for wrong in (probabilities[:, :, 4:, 4:], torch.randn(2, 2, 21, 21), probabilities[:, 0]):
        with pytest.raises(RuntimeError, match=r"not softmax probabilities over 21 tokens \(5 prefix"):
            adapter.scores_from_captures([wrong], (32, 32))


def test_an_input_of_another_size_than_the_model_was_built_for_is_refused():
    adapter = backbone_for(build("deit3"))
    with pytest.raises(ValueError, match=r"built for 32x32 inputs \(patch_embed.img_size\) but gets 48x48"):
        adapter.token_grid((48, 48))
    dynamic = backbone_for(build("eva02", dynamic_img_size=True))
    assert dynamic.declared_image_size() is None and dynamic.token_grid((48, 64)) == (6, 8)
