"""timm CaiT and PVT-v2 (paper Tab. 1) through TimmWrapperForImageClassification: score, regions, training."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from probing import probe_scores
from tiny_data import digits_split
from transformers import AutoModelForImageClassification, PreTrainedModel, TimmWrapperConfig

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.backbones import backbone_for
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.backbones.timm_cait import CaitBackbone
from smmix_hf.backbones.timm_pvt_v2 import PvtV2Backbone
from smmix_hf.cli.train import main
from smmix_hf.data.transforms import collate_image_batch
from smmix_hf.losses import pool_region_tokens
from smmix_hf.mixing import image_attention_score

CAIT_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, depth_token_only=1)
PVT_V2_ARGS = dict(depths=(1, 1), embed_dims=(16, 32), num_heads=(1, 2), sr_ratios=(2, 1), mlp_ratios=(2, 2))


def timm_classifier(architecture: str, **model_args) -> PreTrainedModel:
    config = TimmWrapperConfig(architecture=architecture, num_labels=10, model_args=model_args)
    return AutoModelForImageClassification.from_config(config)


def tiny_cait(**overrides) -> PreTrainedModel:
    """Two self-attention blocks and one class-attention block, patch 8 on 32 px: a 4×4 grid."""
    return timm_classifier("cait_xxs24_224", **{**CAIT_ARGS, **overrides})


def tiny_pvt_v2(**overrides) -> PreTrainedModel:
    """Two stages (total stride 8 on 32 px: a 4×4 grid); the last one attends token to token."""
    return timm_classifier("pvt_v2_b0", **{**PVT_V2_ARGS, **overrides})


TINY_TIMM = {"cait": tiny_cait, "pvt_v2": tiny_pvt_v2}


def test_adapters_are_chosen_by_the_wrapped_timm_class():
    assert isinstance(backbone_for(tiny_cait()), CaitBackbone)
    assert isinstance(backbone_for(tiny_pvt_v2()), PvtV2Backbone)


def test_cait_score_is_the_last_self_attention_block_not_class_attention():
    torch.manual_seed(0)
    model, images = tiny_cait(), torch.randn(3, 3, 32, 32)
    attention = model.timm_model.blocks[-1].attn
    kept = {}
    hook = attention.proj_w.register_forward_pre_hook(lambda module, inputs: kept.update(probs=inputs[0]))
    scores, logits = probe_scores(model, images)
    hook.remove()
    probabilities = kept["probs"].permute(0, 3, 1, 2)  # the softmax CaiT itself formed, [B, heads, N, N]
    assert probabilities.shape == (3, 2, 16, 16)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(3, 2, 16))
    torch.testing.assert_close(scores, image_attention_score(probabilities, 0).view(3, 4, 4), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logits, model(pixel_values=images).logits)


def test_pvt_v2_score_equals_its_unfused_attention():
    torch.manual_seed(0)
    model, images = tiny_pvt_v2(), torch.randn(3, 3, 32, 32)
    scores, _ = probe_scores(model, images)
    eager = copy.deepcopy(model).eval()
    attention = eager.timm_model.stages[-1].blocks[-1].attn
    assert model.timm_model.stages[-1].blocks[-1].attn.fused_attn  # the model under training keeps SDPA
    attention.fused_attn = False
    kept = {}
    attention.attn_drop.register_forward_pre_hook(lambda module, inputs: kept.update(probs=inputs[0]))
    with torch.no_grad():
        eager(pixel_values=images)
    assert kept["probs"].shape == (3, 2, 16, 16)
    torch.testing.assert_close(scores, image_attention_score(kept["probs"], 0).view(3, 4, 4), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("family", sorted(TINY_TIMM))
def test_region_logits_pool_patch_tokens_through_the_timm_head(family):
    torch.manual_seed(0)
    model, images = TINY_TIMM[family]().eval(), torch.randn(2, 3, 32, 32)
    adapter = backbone_for(model)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True
    mask[1, 1:, 1:] = True
    final = {}
    adapter.final_norm().register_forward_hook(lambda module, inputs, output: final.update(tokens=output))
    with torch.no_grad():
        plain_logits = model(pixel_values=images).logits
    probe = SMMixProbe(model)
    with torch.no_grad(), probe.pooling_regions(mask):
        logits = model(pixel_values=images).logits
    patch_tokens = final["tokens"][:, 1:] if family == "cait" else final["tokens"]
    assert patch_tokens.shape[1] == 16
    inside, outside = pool_region_tokens(patch_tokens, mask)
    head = model.timm_model.head
    torch.testing.assert_close(probe.region_logits[0], head(inside))
    torch.testing.assert_close(probe.region_logits[1], head(outside))
    torch.testing.assert_close(logits, plain_logits)


@pytest.mark.parametrize("family", sorted(TINY_TIMM))
def test_timm_backbones_train_a_few_smmix_steps(tmp_path, family):
    torch.manual_seed(0)
    model = TINY_TIMM[family]()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    args = SMMixConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        max_steps=3,
        learning_rate=1e-3,
        logging_steps=1,
        mixup_switch_prob=1.0,
        save_strategy="no",
        motivation_warmup_mixing="random_windows",  # its first step is an SMMix batch (random windows, L_fine)
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = SMMixTrainer(
        model=model, args=args, train_dataset=digits_split("train", 24, True), data_collator=collate_image_batch
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3 and all(entry["mix_share_smmix"] == 1.0 for entry in logs)
    assert all(math.isfinite(logs[-1][term]) for term in ("loss", "loss_cls", "loss_fine", "loss_con"))
    moved = [name for name, value in model.state_dict().items() if not torch.equal(before[name], value)]
    assert "timm_model.head.weight" in moved and len(moved) > len(before) // 2


@pytest.mark.parametrize(
    ("overrides", "reason"), [({"sr_ratios": (2, 2)}, r"sr_ratios\[-1\] > 1"), ({"linear": True}, "linear attention")]
)
def test_pvt_v2_with_reduced_keys_is_rejected(overrides, reason):
    with pytest.raises(ValueError, match=f"keys are reduced \\({reason}"):
        backbone_for(tiny_pvt_v2(**overrides))


def test_other_timm_architectures_name_the_supported_families():
    model = timm_classifier("resnet18")
    with pytest.raises(ValueError, match="supported timm families: cait, pvt_v2, timm_swin, timm, timm_deit_distilled"):
        backbone_for(model)


def test_cli_trains_cait_from_scratch_and_saves_a_reloadable_checkpoint(tmp_path):
    output_dir = tmp_path / "cait"
    overrides = "image_size=32,patch_size=8,embed_dim=32,depth=2,num_heads=2,depth_token_only=1"
    metrics = main(
        [
            "--model", "cait-xxs24", "--from_scratch", "--config_overrides", overrides,
            "--dataset_name", "sklearn-digits", "--max_train_samples", "32", "--max_eval_samples", "32",
            "--output_dir", str(output_dir), "--do_train", "--do_eval", "--max_steps", "2",
            "--per_device_train_batch_size", "8",
            "--mixup_switch_prob", "1", "--save_strategy", "no", "--report_to", "none", "--use_cpu",
            "--disable_tqdm", "true",
            "--crop_pct", "1", "--horizontal_flip", "false",
        ]
    )  # fmt: skip
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    config = json.loads((output_dir / "config.json").read_text())
    assert config["architecture"] == "cait_xxs24_224" and config["model_args"]["img_size"] == 32
    reloaded = AutoModelForImageClassification.from_pretrained(output_dir)
    assert isinstance(backbone_for(reloaded), CaitBackbone)
    assert reloaded.timm_model.patch_embed.img_size == (32, 32)
