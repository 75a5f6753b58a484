"""transformers image classifiers read without a file of their own (``TransformersAttentionBackbone``), one tiny model
per entry of ``TRANSFORMERS_TESTED`` (adding a model there adds it to every test here).

Outside references: the score is Eq. 6 of the eager model's own ``attentions[-1]`` with the prefix count written
out per model type in ``tests/reference/smmix_step.py`` (class token 1, DINOv2's registers after it, none for IJEPA
and SigLIP, CLIP's class embedding 1); the whole step is that file's plain reference step. The models keep their
SDPA kernel while they train, and have it back once the task's hooks are gone.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from reference.smmix_step import last_block_attention_scores, prefix_tokens, reference_smmix_step, token_grid_of
from run_configs import deterministic_task_step, short_run_config
from test_reference_step import BATCH, TERMS, check_against_reference, fixed_batch
from tiny_data import digits_split
from transformers import (
    AutoModelForImageClassification,
    Data2VecVisionConfig,
    Data2VecVisionForImageClassification,
    PreTrainedModel,
    ResNetConfig,
    ResNetForImageClassification,
)

from smmix_hf import SMMixTask, SMMixTrainer
from smmix_hf.backbones.attention_interface import IMPLEMENTATION_PREFIX
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.backbones.tested_models import TRANSFORMERS_TESTED, tiny_config
from smmix_hf.backbones.transformers_generic import TransformersAttentionBackbone
from smmix_hf.data.transforms import collate_image_batch

LABELS = [label for label, _, _ in TRANSFORMERS_TESTED]


# Names of the query and key projections' weights in these models' attention modules.
QUERY_KEY_WEIGHTS = ("query.weight", "key.weight", "q_proj.weight", "k_proj.weight")


def confident_model(label: str, seed: int = 0) -> PreTrainedModel:
    """The tiny model of ``label`` with sharpened attention (query and key weights ×4, so the scores are far from
    uniform) and a confident classifier (×25, so L_con is far from zero and exposes wiring errors)."""
    torch.manual_seed(seed)
    model = AutoModelForImageClassification.from_config(tiny_config(label))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(QUERY_KEY_WEIGHTS):
                parameter.mul_(4.0)
            elif name.startswith("classifier."):
                parameter.mul_(25.0)
    return model


def implementations(model: PreTrainedModel) -> tuple[str, str | None]:
    """The attention implementation of the model's configuration and of its ``vision_config`` (two-tower models)."""
    vision = getattr(model.config, "vision_config", None)
    return model.config._attn_implementation, None if vision is None else vision._attn_implementation


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


@pytest.mark.parametrize("label", LABELS)
def test_the_score_is_eq6_of_the_eager_models_last_attention(label):
    model = confident_model(label).eval()
    images = fixed_batch()["pixel_values"]
    expected_logits, expected = last_block_attention_scores(model, images)

    own = implementations(model)
    probe = SMMixProbe(model)
    assert isinstance(probe.backbone, TransformersAttentionBackbone)
    assert probe.backbone.num_prefix_tokens == prefix_tokens(model.config)
    assert implementations(model)[0].startswith(IMPLEMENTATION_PREFIX)
    logits, scores = probe.motivated_forward(images)
    probe.remove()

    assert scores.shape == (BATCH, *token_grid_of(model, images.shape[-1]))
    assert float(expected.std()) > 1e-3, "the attention must not be uniform, or the check shows nothing"
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, expected_logits, rtol=0, atol=1e-5)
    assert implementations(model) == own and own[0] == "sdpa"


@pytest.mark.parametrize("label", LABELS)
def test_the_trainer_step_equals_the_reference(tmp_path, label):
    torch.manual_seed(0)
    check_against_reference(tmp_path, confident_model(label), motivation_warmup_ratio=0.0)


@pytest.mark.parametrize("label", LABELS)
def test_the_task_step_equals_the_reference(label):
    model = confident_model(label)
    reference_model = copy.deepcopy(model).train()
    batch = fixed_batch()
    images, labels = batch["pixel_values"], batch["labels"]
    side = token_grid_of(model, images.shape[-1])[0] // 2
    expected = reference_smmix_step(reference_model, images, labels, side)
    expected["loss"].backward()

    out = deterministic_task_step(model, images, labels)

    assert expected["loss_con"] > 0.05, "L_con must be large enough to expose wiring errors"
    for name in ("loss", *TERMS):
        assert float(out[name].detach()) == pytest.approx(float(expected[name]), abs=1e-5), name
    for name, parameter in reference_model.named_parameters():
        torch.testing.assert_close(
            dict(model.named_parameters())[name].grad, parameter.grad, rtol=1e-3, atol=1e-5, msg=name
        )


@pytest.mark.parametrize("label", LABELS)
def test_trains_through_the_trainer_and_a_copy_records_nothing(tmp_path, label):
    """SDPA (the model's own kernel) trains; ``copy.deepcopy`` after a step works and its copy records nothing; once the
    hooks are removed the model's implementation is its own again."""
    torch.manual_seed(0)
    model = AutoModelForImageClassification.from_config(tiny_config(label))
    own = implementations(model)
    args = short_run_config(tmp_path, max_steps=2, mixup_switch_prob=1.0, motivation_warmup_ratio=0.0, logging_steps=1)
    trainer = SMMixTrainer(
        model=model, args=args, train_dataset=digits_split("train", 16, True), data_collator=collate_image_batch
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(math.isfinite(entry["loss"]) and entry["loss_fine"] > 0 for entry in logs)

    twin = copy.deepcopy(model).eval()
    backbone = trainer.probe.backbone
    twin_attention = dict(twin.named_modules())[next(n for n, m in model.named_modules() if m is backbone.attention)]
    assert getattr(twin_attention, "_smmix_attention_recorder", None) is None
    images = fixed_batch(4)["pixel_values"]
    backbone.recorder.armed = True  # the original's recorder armed: the copy's forward must not feed it
    try:
        with torch.no_grad():
            twin_logits = twin(pixel_values=images).logits
    finally:
        backbone.recorder.armed = False
    assert backbone.recorder.take() is None
    with torch.no_grad():
        torch.testing.assert_close(twin_logits, model.eval()(pixel_values=images).logits)

    trainer.task.remove_hooks()
    assert implementations(model) == own and own[0] == "sdpa"


TINY_DATA2VEC = dict(
    image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
)  # fmt: skip
UNREADABLE = {
    "resnet": lambda: ResNetForImageClassification(
        ResNetConfig(num_labels=10, depths=[1], hidden_sizes=[8], embedding_size=8)
    ),
    "data2vec-vision": lambda: Data2VecVisionForImageClassification(
        Data2VecVisionConfig(num_labels=10, **TINY_DATA2VEC)
    ),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_a_model_that_cannot_be_read_is_refused_before_the_first_step(name):
    """Neither on the attention interface nor hand-wired: refused when the task is made, in one line."""
    model = UNREADABLE[name]()
    with pytest.raises(ValueError) as error:
        SMMixTask(model)
    message = one_line(error)
    assert f"does not support model_type {model.config.model_type!r} ({type(model).__name__})" in message
    assert "looked for _supports_attention_backend = True" in message
    assert message.endswith("see docs/backbones.md for the models that work.")


@pytest.mark.parametrize("label", LABELS)
def test_the_command_line_trains_each_from_a_config_directory(label, tmp_path):
    """``smmix-train --from_scratch --model <directory>`` with the model's tiny ``config.json``: a user's own
    checkpoint folder of any tested model trains two SMMix steps and saves a classifier that loads back."""
    from smmix_hf.cli.train import main

    model_dir, output_dir = tmp_path / "model", tmp_path / "run"
    tiny_config(label, num_hidden_layers=1).save_pretrained(model_dir)
    metrics = main(
        [
            "--config", "demo", "--model", str(model_dir), "--from_scratch", "true",
            "--config_overrides", "image_size=32", "--max_steps", "2", "--logging_steps", "1",
            "--per_device_train_batch_size", "8", "--max_eval_samples", "16",
            "--mixup_switch_prob", "1.0", "--motivation_warmup_ratio", "0", "--output_dir", str(output_dir),
            "--disable_tqdm", "true",
        ]
    )  # fmt: skip
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    reloaded = AutoModelForImageClassification.from_pretrained(output_dir)
    assert type(reloaded).__name__ == AutoModelForImageClassification.from_config(tiny_config(label)).__class__.__name__
