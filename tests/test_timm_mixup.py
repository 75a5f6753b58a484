"""Our CutMix, Mixup and DeiT switch against timm 1.0's ``Mixup`` (batch mode) fed the same random stream.

timm draws from the legacy ``np.random``, we from a ``numpy.random.Generator``; :mod:`scripted_random` serves
one stream through both, so the same draws in the same order must give the same batches: the same choice of
CutMix or Mixup (``mixup_switch_prob`` is timm's ``switch_prob``, the probability of the window method), the
same boxes (timm 1.0's rounding of odd cuts), the same images and the same soft targets. timm pairs sample
``i`` with ``B-1-i`` (``flip(0)``) as we do; its ``lam`` is the target's share, our λ (Eq. 9) the source's.
Our soft target is read back from the gradient of the method's ``loss_cls`` at zero logits:
``∂L/∂z = (softmax(z) - t) / B``.
"""

from __future__ import annotations

import pytest
import timm.data.mixup as timm_mixup
import torch
from scripted_random import ScriptedRandom, numpy_with_random

from smmix_hf.draws import draw_cutmix_box
from smmix_hf.methods import MixSettings, MixSwitch, build_mix_method

NUM_CLASSES = 7
BATCH = 6


def feed_the_same_stream(monkeypatch: pytest.MonkeyPatch, switch: MixSwitch, seed: int) -> tuple[ScriptedRandom, ...]:
    """timm's draws and ``switch``'s draws, each from a stream of uniforms seeded with ``seed``."""
    theirs, ours = ScriptedRandom(seed), ScriptedRandom(seed)
    monkeypatch.setattr(timm_mixup, "np", numpy_with_random(theirs))
    switch.random.numpy = ours  # shared by every part of the switch
    return theirs, ours


def timm_mixup_of(settings: MixSettings) -> timm_mixup.Mixup:
    uses_cutmix = settings.mix_method == "cutmix"
    return timm_mixup.Mixup(
        mixup_alpha=settings.mixup_alpha,
        cutmix_alpha=settings.cutmix_alpha if uses_cutmix else 0.0,
        cutmix_minmax=settings.cutmix_minmax,
        prob=settings.mix_prob,
        switch_prob=settings.mixup_switch_prob,
        mode="batch",
        correct_lam=True,
        label_smoothing=settings.label_smoothing,
        num_classes=NUM_CLASSES,
    )


def our_batch(switch: MixSwitch, images: torch.Tensor, labels: torch.Tensor) -> tuple[str, torch.Tensor, torch.Tensor]:
    """(the chosen method's name, the mixed images, the soft target of its ``loss_cls``) of one training batch."""
    method = switch.choose()
    draw = method.draw((images.shape[-2], images.shape[-1]), None)
    mixed = method.mix(images.clone(), draw)
    logits = torch.zeros(images.shape[0], NUM_CLASSES, requires_grad=True)
    (gradient,) = torch.autograd.grad(method.losses(logits, labels, mixed)["loss_cls"], logits)
    return method.name, mixed.images, 1.0 / NUM_CLASSES - images.shape[0] * gradient


@pytest.mark.parametrize("switch_prob", [0.3, 0.8])
def test_the_same_stream_makes_the_same_batches_cutmix_as_timm(monkeypatch, switch_prob):
    settings = MixSettings(mix_method="cutmix", mixup_switch_prob=switch_prob, mixup_alpha=0.8, cutmix_alpha=1.0)
    switch = build_mix_method(settings, seed=0)
    theirs, ours = feed_the_same_stream(monkeypatch, switch, seed=11)
    mixup = timm_mixup_of(settings)
    timm_uses_cutmix: list[bool] = []
    params_per_batch = mixup._params_per_batch

    def recording_params_per_batch() -> tuple[float, bool]:
        lam, use_cutmix = params_per_batch()
        timm_uses_cutmix.append(use_cutmix)
        return lam, use_cutmix

    mixup._params_per_batch = recording_params_per_batch
    images, labels = torch.rand(BATCH, 3, 16, 16), torch.arange(BATCH)
    ours_chosen = []
    for _ in range(300):
        mixup(images.clone(), labels)
        ours_chosen.append(our_batch(switch, images, labels)[0])
    assert ours_chosen == ["cutmix" if use else "mixup" for use in timm_uses_cutmix]
    assert theirs.log == ours.log  # the same draws, in the same order, with the same parameters
    assert abs(sum(timm_uses_cutmix) / 300 - switch_prob) < 0.08


@pytest.mark.parametrize(
    "overrides",
    [
        dict(mix_method="cutmix", mixup_switch_prob=0.5, label_smoothing_factor=0.1),
        dict(
            mix_method="cutmix",
            mixup_switch_prob=0.6,
            mix_prob=0.7,
            cutmix_minmax=(0.2, 0.8),
            label_smoothing_factor=0.0,
        ),
        dict(mix_method="cutmix", mixup_switch_prob=0.5, mixup_alpha=0.2, cutmix_alpha=0.5, label_smoothing_factor=0.2),
        dict(mix_method="mixup", mix_prob=0.8, label_smoothing_factor=0.1),
    ],
    ids=["deit", "minmax-prob", "alphas", "mixup-only"],
)
@pytest.mark.parametrize("image_size", [(32, 32), (29, 22)], ids=["32x32", "29x22"])
def test_images_and_soft_targets_equal_timms(monkeypatch, overrides, image_size):
    settings = MixSettings(**overrides)
    switch = build_mix_method(settings, seed=0)
    theirs, ours = feed_the_same_stream(monkeypatch, switch, seed=sum(image_size))
    mixup = timm_mixup_of(settings)
    generator = torch.Generator().manual_seed(0)
    chosen = set()
    for _ in range(60):
        images = torch.rand(BATCH, 3, *image_size, generator=generator)
        labels = torch.randint(0, NUM_CLASSES, (BATCH,), generator=generator)
        timm_images, timm_target = mixup(images.clone(), labels)
        name, our_images, our_target = our_batch(switch, images, labels)
        chosen.add(name)
        torch.testing.assert_close(our_images, timm_images, atol=1e-6, rtol=0)
        torch.testing.assert_close(our_target, timm_target, atol=1e-6, rtol=0)
    assert theirs.log == ours.log
    expected = {"cutmix", "mixup"} if settings.mix_method == "cutmix" else {"mixup"}
    assert chosen == expected | ({"none"} if settings.mix_prob < 1 else set())


@pytest.mark.parametrize("image_size", [(32, 32), (224, 224), (17, 23), (7, 5)])
@pytest.mark.parametrize("minmax", [None, (0.3, 0.9)])
def test_cutmix_boxes_are_timms_boxes(monkeypatch, image_size, minmax):
    """timm 1.0's ``cutmix_bbox_and_lam``: a cut of n pixels spans ``[c - n // 2, c + (n + 1) // 2)``, clipped."""
    theirs, ours = ScriptedRandom(3), ScriptedRandom(3)
    monkeypatch.setattr(timm_mixup, "np", numpy_with_random(theirs))
    unclipped_odd = 0
    for _ in range(400):
        lam = theirs.beta(1.0, 1.0)  # what timm's Mixup draws before the box (Beta(1, 1) whenever minmax is set)
        (top, bottom, left, right), _ = timm_mixup.cutmix_bbox_and_lam(image_size, lam, ratio_minmax=minmax)
        box = draw_cutmix_box(ours, image_size, 1.0, minmax)
        assert box == (int(top), int(bottom), int(left), int(right))
        cut_h = int(image_size[0] * (1 - lam) ** 0.5)
        if minmax is None and cut_h % 2 and top > 0 and bottom < image_size[0]:
            assert bottom - top == cut_h
            unclipped_odd += 1
    assert theirs.log == ours.log
    assert minmax is not None or unclipped_odd > 10
