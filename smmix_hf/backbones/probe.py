"""Forward hooks that read what SMMix needs out of a model's own forward pass, and the motivated forward.

* The motivated forward (:meth:`SMMixProbe.motivated_forward`, or :func:`motivated_forward` for a model
  without a probe) is the one clean no-grad forward in eval mode that gives SMMix its scores and clean
  logits, for the model under training or for a frozen motivator. During it, the last attention
  block's query and key projections (or whatever the model's :class:`~smmix_hf.backbones.Backbone`
  names, e.g. CaiT's talking-heads logits) are kept and turned into the image attention score (Eq. 6)
  once the forward returns. Only that block's attention is ever formed, and the model's attention
  kernel (SDPA by default) is left alone.
* During the mixed forward, the final-layer image tokens are pooled inside and outside the pasted
  window (Eq. 10-11) and appended to the head's input, so the model's own head computes the region
  logits *inside* the forward. That matters under FSDP, where the classifier's parameters are
  gathered only while the wrapped forward runs; the classifier's output is split back so the model
  sees ordinary ``[B, C]`` logits. With a separate region head (:mod:`smmix_hf.backbones.region_head`) the
  region rows are taken off the classifier's input instead and go through that head, still inside
  the forward.

The hooks are idle (a flag check) outside those two uses, and keep no tensor between steps: what a forward
leaves (:meth:`SMMixProbe.take_region_logits`, the class attention) is taken once. A copy of the model
(``copy.deepcopy``: an EMA, ``AveragedModel``, a frozen motivator made from it) carries only inert copies of the
hooks (:class:`_ProbeHook`), so it neither feeds this probe nor holds a tensor of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn

from smmix_hf.backbones.base import Backbone, backbone_for
from smmix_hf.backbones.calling import classifier_logits, input_keyword
from smmix_hf.backbones.region_head import attach_region_head, region_head_of
from smmix_hf.tokens import pool_region_tokens

__all__ = ["SMMixProbe", "motivated_forward"]


class SMMixProbe:
    """Installs SMMix's hooks on ``model`` (the unwrapped ``PreTrainedModel``).

    Example::

        probe = SMMixProbe(model)
        clean_logits, scores = probe.motivated_forward(images)   # [B, C], [B, gh, gw]
        with probe.pooling_regions(source_mask):
            logits = model(pixel_values=mixed).logits
        region_logits = probe.region_logits        # [2, B, C]: inside, outside
    """

    def __init__(self, model: nn.Module, separate_region_head: bool = False) -> None:
        """``separate_region_head`` registers a second linear head on ``model`` for the region logits
        (:func:`~smmix_hf.backbones.region_head.attach_region_head`; a head already there is reused). Without it the
        classifier gives the region logits."""
        self.model = model
        self.backbone: Backbone = backbone_for(model)
        self.input_keyword = input_keyword(model)
        self.backbone.attach()
        if separate_region_head:
            attach_region_head(model, self.backbone.classifier())
        self.scores: torch.Tensor | None = None
        self.region_logits: torch.Tensor | None = None
        self._reading_attention = False
        capture_modules = self.backbone.attention_capture_modules()
        self._captures: list[torch.Tensor | None] = [None] * len(capture_modules)
        self._source_mask: torch.Tensor | None = None
        self._region_features: torch.Tensor | None = None
        self._region_head = region_head_of(model) if separate_region_head else None
        self._region_head_inputs: torch.Tensor | None = None
        self._handles = [
            module.register_forward_hook(_ProbeHook(partial(self._keep_capture, index)))
            for index, module in enumerate(capture_modules)
        ]
        self._handles += [
            self.backbone.final_norm().register_forward_hook(_ProbeHook(self._pool_regions)),
            self.backbone.head_input().register_forward_pre_hook(_ProbeHook(self._append_region_features)),
            self.backbone.classifier().register_forward_hook(_ProbeHook(self._split_region_logits)),
        ]
        if self._region_head is not None:
            hook = _ProbeHook(self._take_region_rows)
            self._handles.append(self.backbone.classifier().register_forward_pre_hook(hook))

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        return self.backbone.token_grid(image_size)

    def motivated_forward(
        self, images: torch.Tensor, model: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The motivated forward: clean logits ``[B, C]`` and Eq. 6 scores ``[B, gh, gw]`` of ``images``.

        Runs one forward under ``no_grad`` with the model in eval mode (no dropout, no drop path), then
        puts it back in the mode it was in. ``model`` is the module to call when it is not the probed
        model itself: the DDP / FSDP wrapper of it during training.
        """
        runner = model if model is not None else self.model
        was_training = runner.training
        runner.eval()
        try:
            with torch.no_grad(), self.reading_attention((images.shape[-2], images.shape[-1])):
                logits = classifier_logits(runner, images, self.input_keyword)
        finally:
            runner.train(was_training)
        scores, self.scores = self.scores, None
        return logits, scores

    def take_region_logits(self) -> torch.Tensor:
        """The ``[2, B, C]`` inside / outside logits the last :meth:`pooling_regions` forward left, handed over once
        (the probe keeps no tensor of a step once the loss has it)."""
        if self.region_logits is None:
            raise RuntimeError("no region logits: the mixed forward did not run under pooling_regions.")
        region_logits, self.region_logits = self.region_logits, None
        return region_logits

    def remove(self) -> None:
        """Detach every hook from the model."""
        for handle in self._handles:
            handle.remove()
        if self._handles:
            self.backbone.release()
        self._handles.clear()

    @contextmanager
    def reading_attention(self, image_size: tuple[int, int]) -> Iterator[None]:
        """Within this block, one forward leaves the image attention scores in :attr:`scores`."""
        self._reading_attention, self.scores = True, None
        try:
            with self.backbone.motivated_forward_context():
                yield
            if any(capture is None for capture in self._captures):
                raise RuntimeError(
                    f"the motivated forward did not reach the last attention block of {type(self.model).__name__} "
                    "(its attention kernel formed no probabilities to read); SMMix cannot place its windows."
                )
            self.scores = self.backbone.scores_from_captures(self._captures, image_size)
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
            tokens = self.backbone.image_tokens(self.backbone.final_tokens(output))
            means = pool_region_tokens(tokens, self._source_mask).flatten(0, 1)
            self._region_features = self.backbone.region_head_features(means)

    def _append_region_features(self, module: nn.Module, inputs: tuple) -> tuple | None:
        if self._region_features is None:
            return None
        (features, *rest) = inputs
        return (torch.cat((features, self._region_features.to(features.dtype))), *rest)

    def _take_region_rows(self, module: nn.Module, inputs: tuple) -> tuple | None:
        """Separate region head: the classifier gets the batch's own rows; the region rows wait for the head."""
        if self._region_features is None:
            return None
        (features, *rest) = inputs
        batch = features.shape[0] // 3
        self._region_head_inputs = features[batch:]
        return (features[:batch], *rest)

    def _split_region_logits(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if self._region_features is None:
            if self._region_head is not None and torch.is_grad_enabled() and module.training:
                # A training forward without regions (Mixup, CutMix): the head still joins the graph, on zero rows,
                # so it gets a (zero) gradient in every step and DDP / FSDP2 reduce the same parameters everywhere.
                (features, *_) = inputs
                return torch.cat((output, self._region_head(features[:0]).to(output.dtype)))
            return None
        self._region_features = None
        if self._region_head is not None:
            # One tensor as with the shared classifier, so that the model's logits reach the head in the autograd
            # graph: DDP's search for unused parameters starts from the forward's output.
            region_inputs, self._region_head_inputs = self._region_head_inputs, None
            output = torch.cat((output, self._region_head(region_inputs).to(output.dtype)))
        batch = output.shape[0] // 3
        self.region_logits = output[batch:].view(2, batch, -1)
        return output[:batch]

    # ---- the class token's attention during the mixed forward (TransMix) ----

    class_attention: torch.Tensor | None = None

    @property
    def supports_class_attention(self) -> bool:
        """Whether the last attention block has a class-token query whose attention can be formed from q and k."""
        return self.backbone.reads_class_attention

    @contextmanager
    def reading_class_attention(self, image_size: tuple[int, int]) -> Iterator[None]:
        """Within this block, one forward (e.g. the mixed one, with gradients) leaves in :attr:`class_attention`
        the attention ``[B, N]`` the class token pays to each image token in the last block, averaged over
        heads. Its own hooks on the query and key projections live only inside the block."""
        if not self.supports_class_attention:
            raise ValueError(f"{type(self.model).__name__} has no class-token query in its last attention block.")
        captures: list[torch.Tensor | None] = [None, None]

        def keep(index: int, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            captures[index] = output.detach()

        modules = self.backbone.query_key_projections()
        handles = [module.register_forward_hook(partial(keep, index)) for index, module in enumerate(modules)]
        self.class_attention = None
        try:
            yield
            if any(capture is None for capture in captures):
                raise RuntimeError("the mixed forward did not reach the last attention block.")
            probabilities = self.backbone.attention_probabilities(*captures, image_size)
            self.class_attention = probabilities[:, :, 0, self.backbone.num_prefix_tokens :].mean(dim=1)
        finally:
            for handle in handles:
                handle.remove()

    def take_class_attention(self) -> torch.Tensor:
        """The ``[B, N]`` class attention the last :meth:`reading_class_attention` forward left, handed over once."""
        if self.class_attention is None:
            raise RuntimeError("no class attention: the mixed forward did not run under reading_class_attention.")
        class_attention, self.class_attention = self.class_attention, None
        return class_attention


def _inert_hook(*args: Any) -> None:
    """What a copied probe hook becomes: it reads nothing and changes nothing."""
    return None


class _ProbeHook:
    """A probe's hook on a module. ``copy.deepcopy`` of the module (an EMA, ``AveragedModel``) gives the copy an inert
    hook instead of a copy of the probe, its state and the tensors it holds."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def __deepcopy__(self, memo: dict[int, Any]) -> Callable[..., None]:
        return _inert_hook


def motivated_forward(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`SMMixProbe.motivated_forward` of a model that has no probe: its hooks are removed afterwards."""
    probe = SMMixProbe(model)
    try:
        return probe.motivated_forward(images)
    finally:
        probe.remove()
