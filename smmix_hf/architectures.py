"""Everything that differs between the supported architectures, in one place.

SMMix needs four things from a model: the attention of its last self-attention block (for the
image attention score, Eq. 6), the token grid that score lives on, the final-layer image tokens
(for the region labels, Eq. 10-11) and the classifier that turns pooled tokens into logits.

| model_type | attention read                         | grid at 224 px | prefix tokens |
|------------|----------------------------------------|----------------|---------------|
| vit        | last encoder layer                     | 14×14 (P=16)   | 1 (class)     |
| deit       | last encoder layer                     | 14×14 (P=16)   | 2 (class, distillation) |
| swin       | last block of the last stage (windows) | 7×7            | 0             |
| pvt        | last block of the last stage           | 7×7            | 1 (class)     |
| timm CaiT  | last self-attention block (not class-attn) | 14×14 (P=16) | 0 (1 after class-attn) |
| timm PVT-v2| last block of the last stage           | 7×7            | 0             |

The ``facebook/deit-*-patch16-224`` checkpoints are ViT-format (``model_type: vit``). Swin has no
class token; its classifier pools all tokens of the last stage, so the SMMix grid is that stage's
grid and each token covers ``H / 7`` pixels at 224 px. When the last stage holds several attention
windows, every token's score is read inside its own window and put back at its position.

Attention is recomputed from the last block's query and key projections, ``softmax(q·kᵀ·scale +
bias)``, captured by forward hooks during the no-grad motivated forward: the model keeps its
SDPA (or any other) attention kernel, which never materialises the attention matrix. timm models
wrapped by ``TimmWrapperForImageClassification`` (``model_type: timm_wrapper``) are dispatched on the
class of the wrapped timm model; their adapters keep whatever the last block produces (the query and
the fused key-value projection for PVT-v2, the talking-heads logits for CaiT) and form the same score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from timm.models.cait import Cait
from timm.models.pvt_v2 import PyramidVisionTransformerV2
from torch import nn
from transformers import PreTrainedModel

from smmix_hf.mixing import image_attention_score

__all__ = ["SUPPORTED_MODEL_TYPES", "SUPPORTED_TIMM_FAMILIES", "ArchitectureAdapter", "adapter_for"]


class ArchitectureAdapter:
    """A ViT-style encoder: a class token (plus ``num_prefix_tokens - 1`` more) then the patch tokens."""

    model_type: ClassVar[str] = "vit"
    num_prefix_tokens: ClassVar[int] = 1

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.config = model.config

    @property
    def backbone(self) -> nn.Module:
        return getattr(self.model, self.model.base_model_prefix)

    def final_norm(self) -> nn.Module:
        """The module whose output is the final-layer token sequence ``[B, T, D]``."""
        return self.backbone.layernorm

    def classifier(self) -> nn.Module:
        return self.model.classifier

    def last_attention(self) -> nn.Module:
        """The attention module of the block whose attention scores the tokens (Eq. 6)."""
        return self.backbone.layers[-1].attention

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        """The linear layers whose outputs are the last block's queries and keys ``[B', T, heads·d]``."""
        attention = self.last_attention()
        return attention.q_proj, attention.k_proj

    def attention_capture_modules(self) -> tuple[nn.Module, ...]:
        """The modules whose outputs the probe keeps during the motivated forward (default: query, key)."""
        return self.query_key_projections()

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """Eq. 6 score ``[B, gh, gw]`` from the outputs of :meth:`attention_capture_modules`, in that order."""
        return self.score_grid(*captures, image_size)

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.last_attention()
        return attention.head_dim, attention.scaling

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The ``(gh, gw)`` grid of image tokens for an input of ``image_size`` pixels."""
        patch = self.config.patch_size
        height, width = image_size
        if height % patch or width % patch:
            raise ValueError(
                f"image size {height}x{width} is not divisible by the patch size {patch}; "
                f"resize images to a multiple of {patch}."
            )
        return height // patch, width // patch

    def attention_probabilities(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Softmax attention ``[B', heads, T, T]`` from the projected query and key ``[B', T, heads·d]``."""
        head_dim, scale = self.head_dim_and_scale()
        query, key = self._split_heads(query, head_dim), self._split_heads(key, head_dim)
        logits = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
        return logits.softmax(dim=-1)

    def score_grid(self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Image attention score (Eq. 6) of every image token, on the token grid: ``[B, gh, gw]``."""
        grid = self.token_grid(image_size)
        scores = image_attention_score(self.attention_probabilities(query, key), self.num_prefix_tokens)
        return scores.view(scores.shape[0], *grid)

    def image_tokens(self, sequence: torch.Tensor) -> torch.Tensor:
        """The image tokens ``[B, N, D]`` of the final sequence, prefix tokens removed."""
        return sequence[:, self.num_prefix_tokens :]

    @staticmethod
    def _split_heads(states: torch.Tensor, head_dim: int) -> torch.Tensor:
        return states.view(*states.shape[:-1], -1, head_dim).transpose(1, 2)


class DeiTAdapter(ArchitectureAdapter):
    """``model_type: deit`` (the distilled checkpoints): class and distillation tokens lead."""

    model_type = "deit"
    num_prefix_tokens = 2


class SwinAdapter(ArchitectureAdapter):
    """Swin: no prefix token; the grid is the last stage's, attention is read window by window."""

    model_type = "swin"
    num_prefix_tokens = 0

    def last_layer(self) -> nn.Module:
        return self.backbone.encoder.layers[-1].blocks[-1]

    def last_attention(self) -> nn.Module:
        return self.last_layer().attention

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        patch = self.config.patch_size
        height, width = image_size
        downsample = patch * 2 ** (len(self.config.depths) - 1)
        if height % downsample or width % downsample:
            raise ValueError(
                f"image size {height}x{width} is not divisible by {downsample} (patch {patch} times "
                f"the {len(self.config.depths) - 1} patch mergings); resize images to a multiple of {downsample}."
            )
        return height // downsample, width // downsample

    def attention_probabilities(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Window attention with Swin's relative position bias and, in a shifted block, its shift mask."""
        attention, layer = self.last_attention(), self.last_layer()
        head_dim, scale = self.head_dim_and_scale()
        query = self._split_heads(query, head_dim).float()
        key = self._split_heads(key, head_dim).float()
        logits = torch.matmul(query, key.transpose(-1, -2)) * scale
        logits = logits + attention.relative_position_bias().float()
        shift_mask = self._shift_mask(layer, query.device)
        if shift_mask is not None:
            windows = shift_mask.shape[0]
            logits = logits.view(-1, windows, *logits.shape[1:]) + shift_mask[None, :, None]
            logits = logits.flatten(0, 1)
        return logits.softmax(dim=-1)

    def score_grid(self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        layer = self.last_layer()
        gh, gw = self.token_grid(image_size)
        window = int(layer.window_size)
        padded_h, padded_w = -(-gh // window) * window, -(-gw // window) * window
        per_window = image_attention_score(self.attention_probabilities(query, key), 0)
        windows_h, windows_w = padded_h // window, padded_w // window
        grid = per_window.view(-1, windows_h, windows_w, window, window)
        grid = grid.permute(0, 1, 3, 2, 4).reshape(-1, padded_h, padded_w)
        if layer.shift_size > 0:
            grid = torch.roll(grid, shifts=(int(layer.shift_size), int(layer.shift_size)), dims=(1, 2))
        return grid[:, :gh, :gw]

    def _shift_mask(self, layer: nn.Module, device: torch.device) -> torch.Tensor | None:
        if layer.shift_size <= 0:
            return None
        gh, gw = layer.input_resolution
        window = int(layer.window_size)
        padded_h, padded_w = -(-gh // window) * window, -(-gw // window) * window
        return layer.get_attn_mask(padded_h, padded_w, dtype=torch.float32, device=device)


class PvtAdapter(ArchitectureAdapter):
    """PVT: a pyramid of four stages; only the last one carries a class token and it is 7×7 at 224 px.

    The score comes from the last block of the last stage, whose keys are not spatially reduced
    (``sequence_reduction_ratios[-1] == 1`` in every released PVT), so its attention is token to token.
    """

    model_type = "pvt"
    num_prefix_tokens = 1

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__(model)
        if self.config.sequence_reduction_ratios[-1] != 1:
            raise ValueError(
                "SMMix reads token-to-token attention from PVT's last stage, but its keys are reduced by "
                f"sequence_reduction_ratios[-1]={self.config.sequence_reduction_ratios[-1]}; use a ratio of 1."
            )

    def final_norm(self) -> nn.Module:
        return self.backbone.encoder.layer_norm

    def last_attention(self) -> nn.Module:
        return self.backbone.encoder.block[-1][-1].attention.self

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        attention = self.last_attention()
        return attention.query, attention.key

    def head_dim_and_scale(self) -> tuple[int, float]:
        head_dim = self.last_attention().attention_head_size
        return head_dim, head_dim**-0.5

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        stride = 1
        for step in self.config.strides:
            stride *= step
        height, width = image_size
        if height % stride or width % stride:
            raise ValueError(
                f"image size {height}x{width} is not divisible by PVT's total stride {stride}; "
                f"resize images to a multiple of {stride}."
            )
        return height // stride, width // stride


class TimmWrapperAdapter(ArchitectureAdapter):
    """A timm model inside ``TimmWrapperForImageClassification``: its classifier is timm's ``head``."""

    model_type = "timm_wrapper"
    timm_class: ClassVar[type[nn.Module]] = nn.Module
    architecture_family: ClassVar[str] = ""

    @property
    def backbone(self) -> nn.Module:
        return self.model.timm_model

    def classifier(self) -> nn.Module:
        return self.backbone.head


class CaitAdapter(TimmWrapperAdapter):
    """timm CaiT (CaiT-XXS-24/36 of Tab. 1): the score comes from the last *self-attention* block.

    CaiT runs ``depth`` self-attention blocks over the patch tokens only, then two class-attention
    blocks in which a class token attends to the frozen patch tokens. Eq. 6 asks for the attention
    the image tokens receive from the image tokens; only the self-attention blocks have it, so the
    score is read from ``blocks[-1]``. Its attention is talking-heads attention: the logits
    ``q·kᵀ·scale`` are mixed across heads by ``proj_l`` before the softmax, and the probabilities are
    mixed again by ``proj_w`` after it. The probe keeps ``proj_l``'s output and the score uses its
    softmax, the row-stochastic attention of each head (``proj_w`` only re-weights the heads). CaiT
    never fuses this attention, so the matrix already exists in its forward and nothing is recomputed.

    The final norm's output is ``[class token, patch tokens]`` (the class-attention stage prepends
    the class token), so one prefix token is dropped before the region pooling of Eq. 10-11, and the
    pooled patch tokens go through timm's own ``head``.
    """

    timm_class = Cait
    architecture_family = "cait"
    num_prefix_tokens = 1

    def final_norm(self) -> nn.Module:
        return self.backbone.norm

    def last_attention(self) -> nn.Module:
        attention = self.backbone.blocks[-1].attn
        if not isinstance(getattr(attention, "proj_l", None), nn.Linear):
            raise ValueError(
                f"SMMix reads CaiT's talking-heads attention (proj_l), but the last block's attention is "
                f"{type(attention).__name__}; build the model with timm's default attn_block."
            )
        return attention

    def attention_capture_modules(self) -> tuple[nn.Module, ...]:
        return (self.last_attention().proj_l,)

    def attention_probabilities_from_logits(self, mixed_logits: torch.Tensor) -> torch.Tensor:
        """Softmax attention ``[B, heads, N, N]`` from ``proj_l``'s output ``[B, N, N, heads]``."""
        return mixed_logits.float().permute(0, 3, 1, 2).softmax(dim=-1)

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        (mixed_logits,) = captures
        grid = self.token_grid(image_size)
        scores = image_attention_score(self.attention_probabilities_from_logits(mixed_logits), 0)
        return scores.view(scores.shape[0], *grid)

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        patch_embed = self.backbone.patch_embed
        patch_h, patch_w = patch_embed.patch_size
        height, width = image_size
        if height % patch_h or width % patch_w:
            raise ValueError(
                f"image size {height}x{width} is not divisible by CaiT's patch size {patch_h}x{patch_w}; "
                f"resize images to a multiple of it."
            )
        return height // patch_h, width // patch_w


class PvtV2Adapter(TimmWrapperAdapter):
    """timm PVT-v2 (b0-b5 of Tab. 1): the score comes from the last block of the last stage.

    PVT-v2 has no class token; its head averages the last stage's tokens, so the SMMix grid is that
    stage's grid (7×7 at 224 px, each token covering 32 pixels). The last block's attention is token to
    token only when its keys are not spatially reduced: ``sr_ratios[-1] == 1`` (true in every released
    PVT-v2) and no linear attention (``pvt_v2_b2_li`` pools keys to 7×7 in every stage, so it is
    rejected). timm computes queries with ``q`` and keys and values with one fused ``kv`` projection;
    the probe keeps both outputs and the key is the first half of ``kv``'s features. The model keeps
    its fused SDPA kernel. The region pooling reads the last stage's ``norm`` output ``[B, N, C]``.
    """

    timm_class = PyramidVisionTransformerV2
    architecture_family = "pvt_v2"
    num_prefix_tokens = 0

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__(model)
        attention = self.last_attention()
        if attention.sr is not None or attention.pool is not None:
            reason = "linear attention pools them to 7x7" if attention.pool is not None else "sr_ratios[-1] > 1"
            raise ValueError(
                f"SMMix reads token-to-token attention from PVT-v2's last stage, but its keys are reduced "
                f"({reason}); build the model with sr_ratios[-1] == 1 and linear=False."
            )

    def last_stage(self) -> nn.Module:
        return self.backbone.stages[-1]

    def final_norm(self) -> nn.Module:
        return self.last_stage().norm

    def last_attention(self) -> nn.Module:
        return self.last_stage().blocks[-1].attn

    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        attention = self.last_attention()
        return attention.q, attention.kv

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        query, key_value = captures
        return self.score_grid(query, key_value[..., : query.shape[-1]], image_size)

    def head_dim_and_scale(self) -> tuple[int, float]:
        attention = self.last_attention()
        return attention.head_dim, attention.scale

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        stride = 4 * 2 ** (len(self.backbone.stages) - 1)
        height, width = image_size
        if height % stride or width % stride:
            raise ValueError(
                f"image size {height}x{width} is not divisible by PVT-v2's total stride {stride}; "
                f"resize images to a multiple of {stride}."
            )
        return height // stride, width // stride


_ADAPTERS: dict[str, type[ArchitectureAdapter]] = {
    adapter.model_type: adapter
    for adapter in (ArchitectureAdapter, DeiTAdapter, SwinAdapter, PvtAdapter, TimmWrapperAdapter)
}
_TIMM_ADAPTERS: tuple[type[TimmWrapperAdapter], ...] = (CaitAdapter, PvtV2Adapter)
SUPPORTED_MODEL_TYPES = tuple(_ADAPTERS)
SUPPORTED_TIMM_FAMILIES = tuple(adapter.architecture_family for adapter in _TIMM_ADAPTERS)


def _timm_adapter(model: nn.Module) -> ArchitectureAdapter:
    timm_model = getattr(model, "timm_model", None)
    for adapter in _TIMM_ADAPTERS:
        if isinstance(timm_model, adapter.timm_class):
            head = timm_model.head
            if not isinstance(head, nn.Linear):
                raise ValueError(
                    f"{type(model).__name__} wraps a timm {adapter.architecture_family} without a classifier head; "
                    "load it with TimmWrapperForImageClassification (AutoModelForImageClassification)."
                )
            return adapter(model)
    architecture = getattr(model.config, "architecture", type(timm_model).__name__)
    raise ValueError(
        f"SMMix does not support the timm architecture {architecture!r}; supported timm families: "
        f"{', '.join(SUPPORTED_TIMM_FAMILIES)} (e.g. cait_xxs24_224, pvt_v2_b0)."
    )


def adapter_for(model: nn.Module) -> ArchitectureAdapter:
    """The adapter of ``model``; an unsupported model gets an error naming the supported types."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in _ADAPTERS:
        raise ValueError(
            f"SMMix does not support model_type {model_type!r} ({type(model).__name__}); "
            f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)} "
            f"(timm_wrapper: {', '.join(SUPPORTED_TIMM_FAMILIES)})."
        )
    if model_type == TimmWrapperAdapter.model_type:
        return _timm_adapter(model)
    if not isinstance(getattr(model, "classifier", None), nn.Module):
        raise ValueError(
            f"{type(model).__name__} has no trainable `classifier` head; load the model with "
            f"AutoModelForImageClassification (e.g. {model_type.capitalize()}ForImageClassification)."
        )
    return _ADAPTERS[model_type](model)
