"""Reading a model's image attention scores (Eq. 6) with a probe of its own, for tests."""

from __future__ import annotations

import torch

from smmix_hf.backbones.probe import SMMixProbe


def probe_scores(model, images):
    """The model's own Eq. 6 scores and clean logits from one no-grad eval forward."""
    probe = SMMixProbe(model)
    model.eval()
    with torch.no_grad(), probe.reading_attention(tuple(images.shape[-2:])):
        logits = model(pixel_values=images).logits
    probe.remove()
    return probe.scores, logits
