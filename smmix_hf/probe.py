"""Forward hooks that read what SMMix needs out of a model's own forward pass.

* During the motivated forward, the last attention block's query and key projections (or whatever
  the architecture's adapter names, e.g. CaiT's talking-heads logits) are kept and turned into the
  image attention score (Eq. 6) once the forward returns. Only that block's
  attention is ever formed, and the model's attention kernel (SDPA by default) is left alone.
* During the mixed forward, the final-layer image tokens are pooled inside and outside the pasted
  window (Eq. 10-11) and appended to the classifier's input, so the model's own classifier computes
  the region logits *inside* the forward. That matters under FSDP, where the classifier's
  parameters are gathered only while the wrapped forward runs; the classifier's output is split
  back so the model sees ordinary ``[B, C]`` logits.

The hooks are idle (a flag check) outside those two uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
from torch import nn

from smmix_hf.architectures import ArchitectureAdapter, adapter_for
from smmix_hf.losses import pool_region_tokens

__all__ = ["SMMixProbe"]


class SMMixProbe:
    """Installs SMMix's hooks on ``model`` (the unwrapped ``PreTrainedModel``).

    Example::

        probe = SMMixProbe(model)
        with torch.no_grad(), probe.reading_attention(image_size=(224, 224)):
            clean_logits = model(pixel_values=images).logits
        scores = probe.scores                      # [B, gh, gw]
        with probe.pooling_regions(source_mask):
            logits = model(pixel_values=mixed).logits
        region_logits = probe.region_logits        # [2, B, C]: inside, outside
    """

    def __init__(self, model: nn.Module) -> None:
        self.adapter: ArchitectureAdapter = adapter_for(model)
        self.scores: torch.Tensor | None = None
        self.region_logits: torch.Tensor | None = None
        self._reading_attention = False
        capture_modules = self.adapter.attention_capture_modules()
        self._captures: list[torch.Tensor | None] = [None] * len(capture_modules)
        self._source_mask: torch.Tensor | None = None
        self._region_features: torch.Tensor | None = None
        classifier = self.adapter.classifier()
        self._handles = [
            module.register_forward_hook(partial(self._keep_capture, index))
            for index, module in enumerate(capture_modules)
        ]
        self._handles += [
            self.adapter.final_norm().register_forward_hook(self._pool_regions),
            classifier.register_forward_pre_hook(self._append_region_features),
            classifier.register_forward_hook(self._split_region_logits),
        ]

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        return self.adapter.token_grid(image_size)

    def remove(self) -> None:
        """Detach every hook from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @contextmanager
    def reading_attention(self, image_size: tuple[int, int]) -> Iterator[None]:
        """Within this block, one forward leaves the image attention scores in :attr:`scores`."""
        self._reading_attention, self.scores = True, None
        try:
            yield
            if any(capture is None for capture in self._captures):
                raise RuntimeError("the motivated forward did not reach the last attention block.")
            self.scores = self.adapter.scores_from_captures(self._captures, image_size)
        finally:
            self._reading_attention = False
            self._captures = [None] * len(self._captures)

    @contextmanager
    def pooling_regions(self, source_mask: torch.Tensor) -> Iterator[None]:
        """Within this block, one forward leaves the inside / outside logits in :attr:`region_logits`."""
        self._source_mask, self.region_logits = source_mask, None
        try:
            yield
            if self.region_logits is None:
                raise RuntimeError("the mixed forward did not reach the classifier with pooled regions.")
        finally:
            self._source_mask, self._region_features = None, None

    def _keep_capture(self, index: int, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if self._reading_attention:
            self._captures[index] = output.detach()

    def _pool_regions(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if self._source_mask is not None:
            tokens = self.adapter.image_tokens(output)
            self._region_features = pool_region_tokens(tokens, self._source_mask).flatten(0, 1)

    def _append_region_features(self, module: nn.Module, inputs: tuple) -> tuple | None:
        if self._region_features is None:
            return None
        (features, *rest) = inputs
        return (torch.cat((features, self._region_features.to(features.dtype))), *rest)

    def _split_region_logits(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if self._region_features is None:
            return None
        batch = output.shape[0] // 3
        self.region_logits = output[batch:].view(2, batch, -1)
        self._region_features = None
        return output[:batch]
