"""Copies of a model under SMMix training: ``copy.deepcopy``, timm's ``ModelEmaV3`` and torch's ``AveragedModel``
made at any point of a run work, carry no live hook of the task, and an EMA can be the motivator (a momentum
teacher: a variant of the paper's pre-trained motivator, Tab. 9).

The references are the libraries' own averaging code (timm.utils.ModelEmaV3, torch.optim.swa_utils.AveragedModel)
and the copied model's plain forward.
"""

from __future__ import annotations

import copy

import pytest
import timm
import torch
from timm.utils import ModelEmaV3
from tiny_models import tiny_model, tiny_vit
from torch.optim.swa_utils import AveragedModel

from smmix_hf import MixSettings, SMMixTask
from smmix_hf.backbones.calling import classifier_logits, input_keyword

SETTINGS = MixSettings(motivation_warmup_ratio=0.0, mixup_switch_prob=1.0)


def _timm_vit() -> torch.nn.Module:
    return timm.create_model(
        "deit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10
    )


MODELS = {
    "vit": tiny_vit,  # hand-wired: hooks on the last block's query and key
    "transformers": lambda: tiny_model("transformers"),  # generic: the attention interface
    "timm": _timm_vit,  # generic: the last block's attn_drop
}


def _step(task: SMMixTask, optimizer: torch.optim.Optimizer, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    images, labels = torch.randn(4, 3, 32, 32, generator=generator), torch.randint(0, 10, (4,), generator=generator)
    optimizer.zero_grad()
    task(images, labels)["loss"].backward()
    optimizer.step()


def _live_hooks(model: torch.nn.Module) -> list[str]:
    """The names of the hooks on ``model`` that still do something (a copied probe hook is the inert function)."""
    from smmix_hf.backbones.probe import _inert_hook

    found = []
    for module in model.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks):
            found += [type(hook).__name__ for hook in hooks.values() if hook is not _inert_hook]
    return found


@pytest.mark.parametrize("family", list(MODELS))
def test_deepcopy_ema_and_averaged_model_work_mid_run_and_carry_no_live_hook(family):
    torch.manual_seed(0)
    model = MODELS[family]().train()
    early_ema = ModelEmaV3(model, decay=0.9)  # before the first step: it copies the task's hooks too
    task = SMMixTask(model, SETTINGS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _step(task, optimizer, seed=0)
    twin = copy.deepcopy(model)  # raised once a step had run: the hooks held the step's region logits
    ema, averaged = ModelEmaV3(model, decay=0.9), AveragedModel(model)
    assert _live_hooks(twin) == [] and _live_hooks(ema.module) == [] and _live_hooks(early_ema.module) == []
    _step(task, optimizer, seed=1)
    ema.update(model)
    averaged.update_parameters(model)

    # The copies compute what the model computes, and the task's next step is unaffected by their forwards.
    images = torch.randn(2, 3, 32, 32)
    keyword = input_keyword(model)
    model.eval(), twin.eval()
    with torch.no_grad():
        reloaded = copy.deepcopy(model)
        torch.testing.assert_close(
            classifier_logits(reloaded, images, keyword), classifier_logits(model, images, keyword)
        )
        classifier_logits(ema.module, images, keyword)
        classifier_logits(averaged.module, images, keyword)
    model.train()
    _step(task, optimizer, seed=2)

    task.remove_hooks()
    assert _live_hooks(model) == []
    if family == "transformers":  # the model's own attention implementation is back
        assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("family", ["vit", "timm"])
def test_an_ema_of_the_model_can_be_its_motivator(family):
    """A momentum teacher: ``ModelEmaV3``'s module places the windows and gives the clean logits (Tab. 9's motivator,
    updated from the model instead of pre-trained). Its scores are the EMA model's own, not the student's."""
    torch.manual_seed(0)
    model = MODELS[family]().train()
    ema = ModelEmaV3(model, decay=0.5)
    task = SMMixTask(model, SETTINGS, motivator=ema.module)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for seed in range(3):
        _step(task, optimizer, seed)
        ema.update(model)
    images = torch.randn(4, 3, 32, 32)
    clean_logits, _ = task.scorer(images, (4, 4))  # the 4×4 grid of 8-px patches on 32 px
    ema.module.eval()
    with torch.no_grad():
        expected = classifier_logits(ema.module, images, input_keyword(model))
    torch.testing.assert_close(clean_logits, expected)
    assert all(not parameter.requires_grad for parameter in ema.module.parameters())
    assert not any(parameter is own for parameter in ema.module.parameters() for own in model.parameters())
