"""timm ViT / DeiT (plain and distilled) and Swin, raw (``timm.create_model``) and inside
``TimmWrapperForImageClassification``: score, regions and a whole SMMix step against an independent reference
(tests/reference/timm_attention.py: unfused attention read off timm's own softmax, loops, losses term by term).

Deterministic setting: side ratio 0.5, every batch SMMix, no warm-up, no dropout or drop path. The models are
briefly fitted first so the clean predictions are confident and L_con is far from zero.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import timm
import torch
from reference.timm_attention import (
    assert_timm_region_logits_follow_the_head,
    eq6_scores,
    logits_of,
    reference_timm_smmix_step,
    timm_module,
)
from run_configs import deterministic_task_step, short_run_config
from tiny_data import digits_split
from tiny_models import timm_model
from transformers import AutoModelForImageClassification

from smmix_hf import SMMixTrainer
from smmix_hf.backbones import backbone_for
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.backbones.timm_attention import TimmAttentionBackbone
from smmix_hf.backbones.timm_cait import CaitBackbone
from smmix_hf.backbones.timm_pvt_v2 import PvtV2Backbone
from smmix_hf.backbones.timm_swin import TimmSwinBackbone
from smmix_hf.backbones.timm_vit import TimmDeiTDistilledBackbone
from smmix_hf.cli.train import main
from smmix_hf.data.transforms import collate_image_batch

BATCH, CLASSES = 8, 10
TERMS = ("loss_cls", "loss_fine", "loss_con")
FIXTURES = Path(__file__).parent / "fixtures" / "hub"

# Tiny shapes of the real architectures (32 px inputs).
FAMILIES = {
    # 4×4 grid of 8-px patches; qk_norm so the score must normalise queries and keys as the model does.
    "vit": ("deit_tiny_patch16_224", dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, qk_norm=True)),
    # class + distillation token, two heads.
    "deit_distilled": (
        "deit_tiny_distilled_patch16_224",
        dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2),
    ),
    # stage 1: 16×16 (patch 2), stage 2: 8×8 = four 4×4 windows; its last block is shifted by 2.
    "swin": (
        "swin_tiny_patch4_window7_224",
        dict(img_size=32, patch_size=2, embed_dim=16, depths=(1, 2), num_heads=(1, 2), window_size=4, drop_path_rate=0),
    ),
}
ADAPTERS = {"vit": TimmAttentionBackbone, "deit_distilled": TimmDeiTDistilledBackbone, "swin": TimmSwinBackbone}
GRID = {"vit": 4, "deit_distilled": 4, "swin": 8}
KINDS = ("raw", "wrapped")
# Which step runs: SMMixTask for both kinds, SMMixTrainer for the transformers-wrapped model.
STEPS = (("raw", "task"), ("wrapped", "task"), ("wrapped", "trainer"))


def build(family: str, kind: str, **overrides) -> torch.nn.Module:
    """The family's tiny model, as ``timm.create_model`` returns it or inside TimmWrapperForImageClassification,
    with SDPA attention everywhere (timm's Swin leaves it off by default; the score must not depend on it)."""
    architecture, args = FAMILIES[family]
    return timm_model(architecture, {**args, **overrides}, kind, CLASSES)


def confident(model: torch.nn.Module, steps: int = 30) -> torch.nn.Module:
    """Fit briefly with plain CE so clean predictions are confident and differ (L_con far from zero)."""
    data = collate_image_batch(list(digits_split("train", 32)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(logits_of(model, data["pixel_values"]), data["labels"]).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model


def fixed_batch() -> dict[str, torch.Tensor]:
    return collate_image_batch(list(digits_split("validation", BATCH)))


def smmix_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """One SMMix step of the package on ``model`` (loss backpropagated): ``SMMixTask``, the step every training
    loop calls (SMMixTrainer, timm's loop, Lightning); raw timm models are called positionally."""
    out = deterministic_task_step(model, images, labels)
    assert out["output"].shape == (images.shape[0], CLASSES)
    return {name: float(out[name].detach()) for name in ("loss", *TERMS)}


def trainer_step(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, tmp_path: Path
) -> dict[str, float]:
    """The same step through ``SMMixTrainer.compute_loss`` (transformers models only), read from its log."""
    args = short_run_config(
        tmp_path,
        per_device_train_batch_size=BATCH,
        mixup_switch_prob=1.0,
        region_scale_min=0.5,
        region_scale_max=0.5,
        motivation_warmup_ratio=0.0,
    )
    trainer = SMMixTrainer(model=model, args=args, data_collator=collate_image_batch)
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, {"pixel_values": images, "labels": labels})
    loss.backward()
    trainer.log({"loss": float(loss.detach())})
    logged = trainer.state.log_history[-1]
    return {"loss": float(loss.detach()), **{name: logged[name] for name in TERMS}}


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in timm_module(model).named_parameters() if p.grad is not None}


# ---- which adapter reads which model ----


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_adapter_is_chosen_for_raw_and_wrapped_models(family, kind):
    model = build(family, kind)
    adapter = backbone_for(model)
    assert type(adapter) is ADAPTERS[family]
    assert adapter.backbone is timm_module(model)
    assert adapter.num_prefix_tokens == {"vit": 1, "deit_distilled": 2, "swin": 0}[family]
    assert adapter.token_grid((32, 32)) == (GRID[family], GRID[family])


def test_raw_cait_and_pvt_v2_are_read_as_well():
    cait = timm.create_model(
        "cait_xxs24_224", num_classes=CLASSES, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2
    )
    pvt = timm.create_model(
        "pvt_v2_b0", num_classes=CLASSES, depths=(1, 1), embed_dims=(16, 32), num_heads=(1, 2), sr_ratios=(2, 1)
    )
    for model, adapter in ((cait, CaitBackbone), (pvt, PvtV2Backbone)):
        assert isinstance(backbone_for(model), adapter)
        logits, scores = SMMixProbe(model).motivated_forward(torch.randn(2, 3, 32, 32))
        assert logits.shape == (2, CLASSES) and scores.shape == (2, 4, 4)
        torch.testing.assert_close(scores.sum((1, 2)), torch.ones(2))  # no prefix tokens: each row sums to 1


# ---- score (Eq. 6) and region logits (Eq. 10-13) against the reference ----


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_score_equals_the_unfused_attention(family, kind):
    torch.manual_seed(0)
    model, images = build(family, kind), torch.randn(3, 3, 32, 32)
    with torch.no_grad():  # move the norms off their identity initialisation (qk_norm, final norm)
        for name, parameter in timm_module(model).named_parameters():
            if "norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    logits, scores = SMMixProbe(model).motivated_forward(images)
    expected_logits, expected = eq6_scores(model, images)
    if family == "swin":
        block = timm_module(model).layers[-1].blocks[-1]
        assert block.shift_size == (2, 2) and block.window_size == (4, 4)  # four windows, shifted: both undone
    assert all(module.fused_attn for module in timm_module(model).modules() if hasattr(module, "fused_attn"))
    assert scores.shape == (3, GRID[family], GRID[family])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_region_logits_go_through_what_the_model_applies_to_its_pooled_feature(family, kind):
    torch.manual_seed(0)
    model, images = build(family, kind).eval(), torch.randn(2, 3, 32, 32)
    side = GRID[family]
    mask = torch.zeros(2, side, side, dtype=torch.bool)
    mask[0, : side // 2, : side // 2] = True
    mask[1, 1:, 2:] = True
    assert_timm_region_logits_follow_the_head(model, images, mask)


# ---- one whole SMMix step against the reference ----


@pytest.mark.parametrize(("kind", "runner"), STEPS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_smmix_step_equals_the_reference(family, kind, runner, tmp_path):
    torch.manual_seed(0)
    model = confident(build(family, kind))
    reference_model = copy.deepcopy(model)
    batch = fixed_batch()
    images, labels = batch["pixel_values"], batch["labels"]

    expected = reference_timm_smmix_step(reference_model.train(), images, labels, GRID[family] // 2, CLASSES)
    expected["loss"].backward()
    observed = smmix_step(model, images, labels) if runner == "task" else trainer_step(model, images, labels, tmp_path)

    assert expected["loss_con"] > 0.05, "L_con must be large enough to expose wiring errors"
    for name in ("loss", *TERMS):
        assert observed[name] == pytest.approx(float(expected[name].detach()), abs=1e-5), name
    reference_grads, observed_grads = gradients(reference_model), gradients(model)
    assert set(reference_grads) == set(observed_grads)
    for name, grad in reference_grads.items():
        torch.testing.assert_close(
            observed_grads[name], grad, rtol=1e-4, atol=1e-5, msg=lambda text, name=name: f"{name}: {text}"
        )


# ---- what is refused, in one line ----


def test_unsupported_models_name_what_is_supported():
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=CLASSES)
    with pytest.raises(ValueError, match=r"timm architecture 'resnet18' \(ResNet\); supported timm families: .*timm"):
        backbone_for(resnet)
    with pytest.raises(ValueError, match=r"SMMix cannot read the attention of Sequential: supported are"):
        backbone_for(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)))
    levit = timm.create_model("levit_128s", num_classes=CLASSES)  # its attention has no fused_attn / attn_drop
    with pytest.raises(ValueError, match=r"timm architecture 'levit_128s' \(LevitDistilled\)"):
        backbone_for(levit)


@pytest.mark.parametrize(
    ("family", "overrides", "message"),
    [
        ("vit", {"global_pool": "map"}, "global_pool='map'"),
        ("vit", {"num_classes": 0}, "without a classifier head"),
        ("swin", {"img_size": 24}, r"last stage is 6x6 tokens .* not a whole number of its 4x4 windows"),
    ],
)
def test_models_smmix_cannot_read_are_refused(family, overrides, message):
    architecture, args = FAMILIES[family]
    model = timm.create_model(architecture, pretrained=False, **{"num_classes": CLASSES, **args, **overrides})
    with pytest.raises(ValueError, match=message):
        backbone_for(model).token_grid((24, 24) if family == "swin" else (32, 32))


def test_distilled_training_is_refused():
    model = build("deit_distilled", "raw")
    model.set_distilled_training(True)
    with pytest.raises(ValueError, match="set_distilled_training\\(False\\)"):
        backbone_for(model)


# ---- smmix-train on a checkpoint shaped like the Hub's timm/deit_small_patch16_224.fb_in1k ----


def test_the_fixture_mirrors_timms_pretrained_cfg():
    raw = json.loads((FIXTURES / "timm/deit_small_patch16_224.fb_in1k/config.json").read_text())
    cfg = timm.models.get_pretrained_cfg("deit_small_patch16_224.fb_in1k").to_dict()
    assert raw["architecture"] == "deit_small_patch16_224" and raw["num_classes"] == 1000
    assert (raw["num_features"], raw["global_pool"]) == (384, "token")
    for key in ("tag", "input_size", "crop_pct", "interpolation", "mean", "std", "crop_mode", "fixed_input_size"):
        assert raw["pretrained_cfg"][key] == (list(cfg[key]) if isinstance(cfg[key], tuple) else cfg[key]), key


def test_cli_trains_the_timm_deit_fixture_with_smmix(tmp_path):
    output_dir = tmp_path / "deit"
    overrides = "image_size=32,patch_size=8,embed_dim=32,depth=2,num_heads=2"
    metrics = main(
        [
            "--model", str(FIXTURES / "timm/deit_small_patch16_224.fb_in1k"), "--from_scratch",
            "--config_overrides", overrides,
            "--dataset_name", "sklearn-digits", "--max_train_samples", "32", "--max_eval_samples", "32",
            "--output_dir", str(output_dir), "--do_train", "--do_eval", "--max_steps", "2",
            "--per_device_train_batch_size", "8", "--logging_steps", "1",
            "--mixup_switch_prob", "1", "--motivation_warmup_ratio", "0", "--save_strategy", "no",
            "--report_to", "none", "--use_cpu", "--disable_tqdm", "true",
            "--crop_pct", "1", "--horizontal_flip", "false",
        ]
    )  # fmt: skip
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    state = json.loads((output_dir / "trainer_state.json").read_text())
    steps = [entry for entry in state["log_history"] if "loss_fine" in entry]
    assert len(steps) == 2, state["log_history"]
    config = json.loads((output_dir / "config.json").read_text())
    assert config["architecture"] == "deit_small_patch16_224" and config["model_args"]["img_size"] == 32
    reloaded = AutoModelForImageClassification.from_pretrained(output_dir)
    assert isinstance(backbone_for(reloaded), TimmAttentionBackbone)
