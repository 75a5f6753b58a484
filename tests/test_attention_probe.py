"""The attention score read through the probe equals the eager attention of the same model (Eq. 6)."""

from __future__ import annotations

import copy

import pytest
import torch
from probing import probe_scores
from tiny_models import TINY_FAMILIES, tiny_beit, tiny_deit, tiny_pvt, tiny_swin, tiny_vit
from transformers import AutoModelForImageClassification, ConvNextConfig

from smmix_hf.backbones import backbone_for
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.mixing import image_attention_score


def eager_attention(model, images):
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    eager.eval()
    with torch.no_grad():
        outputs = eager(pixel_values=images, output_attentions=True)
    return outputs.attentions[-1], outputs.logits


@pytest.mark.parametrize(("build", "prefix"), [(tiny_vit, 1), (tiny_deit, 2)])
def test_vit_and_deit_scores_equal_eager_attention(build, prefix):
    torch.manual_seed(0)
    model, images = build(), torch.randn(3, 3, 32, 32)
    scores, logits = probe_scores(model, images)
    attentions, eager_logits = eager_attention(model, images)
    assert attentions.shape == (3, 2, 16 + prefix, 16 + prefix)
    expected = image_attention_score(attentions, prefix).view(3, 4, 4)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logits, eager_logits, rtol=1e-4, atol=1e-5)
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("shared", [False, True])
def test_beit_scores_equal_eager_attention_with_its_relative_position_bias(shared):
    torch.manual_seed(0)
    model = tiny_beit(use_relative_position_bias=not shared, use_shared_relative_position_bias=shared)
    bias = model.beit.shared_position_bias if shared else model.beit.layers[-1].relative_position_bias
    torch.nn.init.normal_(bias.relative_position_bias_table, std=1.0)  # zero at init; make it matter
    images = torch.randn(3, 3, 32, 32)
    scores, logits = probe_scores(model, images)
    attentions, eager_logits = eager_attention(model, images)
    assert attentions.shape == (3, 2, 17, 17)
    torch.testing.assert_close(scores, image_attention_score(attentions, 1).view(3, 4, 4), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logits, eager_logits, rtol=1e-4, atol=1e-5)
    assert model.config._attn_implementation == "sdpa"


def test_beit_region_logits_go_through_the_pooler_norm():
    torch.manual_seed(0)
    model, images = tiny_beit().eval(), torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True
    mask[1, 1:, 1:] = True
    with torch.no_grad():
        plain = model(pixel_values=images).logits
        tokens = model.beit(pixel_values=images).last_hidden_state[:, 1:]
    probe = SMMixProbe(model)
    with torch.no_grad(), probe.pooling_regions(mask):
        logits = model(pixel_values=images).logits
    head = torch.nn.Sequential(model.beit.pooler.layernorm, model.classifier)
    inside = torch.stack([tokens[b][mask[b].flatten()].mean(0) for b in range(2)])
    outside = torch.stack([tokens[b][~mask[b].flatten()].mean(0) for b in range(2)])
    torch.testing.assert_close(probe.region_logits[0], head(inside))
    torch.testing.assert_close(probe.region_logits[1], head(outside))
    torch.testing.assert_close(logits, plain)


def test_pvt_scores_equal_its_last_stage_attention():
    torch.manual_seed(0)
    model, images = tiny_pvt(), torch.randn(3, 3, 32, 32)
    scores, _ = probe_scores(model, images)
    model.eval()
    with torch.no_grad():
        attentions = model(pixel_values=images, output_attentions=True).attentions[-1]
    assert attentions.shape == (3, 2, 17, 17)
    torch.testing.assert_close(scores, image_attention_score(attentions, 1).view(3, 4, 4), rtol=1e-5, atol=1e-7)


def test_swin_single_window_scores_equal_eager_attention():
    torch.manual_seed(0)
    model, images = tiny_swin(window_size=8), torch.randn(2, 3, 32, 32)
    scores, _ = probe_scores(model, images)
    attentions, _ = eager_attention(model, images)
    assert attentions.shape == (2, 2, 64, 64)
    torch.testing.assert_close(scores, image_attention_score(attentions, 0).view(2, 8, 8), rtol=1e-5, atol=1e-7)
    assert model.config._attn_implementation == "sdpa"


def test_swin_shifted_windows_are_mapped_back_to_positions():
    torch.manual_seed(0)
    model, images = tiny_swin(window_size=4), torch.randn(2, 3, 32, 32)
    scores, _ = probe_scores(model, images)
    attentions, _ = eager_attention(model, images)
    window, shift, grid = 4, 2, 8
    per_window = image_attention_score(attentions, 0).view(2, 4, window * window)
    expected = torch.empty(2, grid, grid)
    for row in range(grid):
        for col in range(grid):
            shifted_row, shifted_col = (row - shift) % grid, (col - shift) % grid
            index = (shifted_row // window) * (grid // window) + shifted_col // window
            expected[:, row, col] = per_window[:, index, (shifted_row % window) * window + shifted_col % window]
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-7)


def test_region_logits_come_from_the_models_own_classifier():
    torch.manual_seed(0)
    model, images = tiny_vit(), torch.randn(2, 3, 32, 32)
    model.eval()
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True
    mask[1, 1:, 1:] = True
    probe = SMMixProbe(model)
    with torch.no_grad(), probe.pooling_regions(mask):
        outputs = model(pixel_values=images, output_hidden_states=True)
    tokens = model.vit.layernorm(outputs.hidden_states[-1])[:, 1:]
    inside = torch.stack([tokens[b][mask[b].flatten()].mean(0) for b in range(2)])
    outside = torch.stack([tokens[b][~mask[b].flatten()].mean(0) for b in range(2)])
    torch.testing.assert_close(probe.region_logits[0], model.classifier(inside))
    torch.testing.assert_close(probe.region_logits[1], model.classifier(outside))
    assert outputs.logits.shape == (2, 10)
    class_token = model.vit.layernorm(outputs.hidden_states[-1])[:, 0]
    torch.testing.assert_close(outputs.logits, model.classifier(class_token))


def test_unsupported_architecture_names_supported_types():
    model = AutoModelForImageClassification.from_config(
        ConvNextConfig(num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=3)
    )
    with pytest.raises(ValueError, match="supported model types: vit, deit, swin, pvt, beit"):
        backbone_for(model)


def test_every_family_reads_scores_and_pools_regions_without_changing_the_forward(tiny_family):
    """Runs for every registered family with a ``tiny_config``: a new family is covered without an edit here."""
    torch.manual_seed(0)
    model, images = TINY_FAMILIES[tiny_family]().eval(), torch.randn(2, 3, 32, 32)
    attention_kernel = getattr(model.config, "_attn_implementation", None)
    grid = backbone_for(model).token_grid((32, 32))
    with torch.no_grad():
        plain = model(pixel_values=images).logits
    scores, logits = probe_scores(model, images)
    assert scores.shape == (2, *grid) and torch.isfinite(scores).all() and (scores >= 0).all()
    assert scores.flatten(1).std(dim=1).min() > 0, "the score must tell the tokens apart"
    torch.testing.assert_close(logits, plain)
    mask = torch.zeros(2, *grid, dtype=torch.bool)
    mask[0, : grid[0] // 2, : grid[1] // 2] = True
    mask[1, grid[0] // 2 :, grid[1] // 2 :] = True
    probe = SMMixProbe(model)
    with torch.no_grad(), probe.pooling_regions(mask):
        pooled = model(pixel_values=images).logits
    probe.remove()
    torch.testing.assert_close(pooled, plain)
    assert [tuple(region.shape) for region in probe.region_logits] == [(2, model.config.num_labels)] * 2
    assert not torch.allclose(probe.region_logits[0], probe.region_logits[1])
    assert getattr(model.config, "_attn_implementation", None) == attention_kernel
