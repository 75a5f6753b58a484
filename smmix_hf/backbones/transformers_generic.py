"""Any transformers image classifier on the attention interface, read without a file of its own: DINOv2 (with and
without registers), ViT-MSN, IJEPA, the SigLIP and CLIP image classifiers, and whatever else
``AutoModelForImageClassification`` builds with ``_supports_attention_backend``.

What SMMix reads, and where each model keeps it:

* **Score (Eq. 6).** The last attention module (the last instance of the class the model records attentions from,
  ``_can_record_outputs["attentions"]``) gives its softmax probabilities during the motivated forward only, through
  a function registered with ``AttentionInterface`` (:mod:`smmix_hf.backbones.attention_interface`); every other
  call keeps the model's own kernel.
* **Prefix tokens.** Class, distillation and register tokens, read from the embeddings' parameters (``cls_token``,
  ``distillation_token``, ``register_tokens``, CLIP's ``class_embedding``), checked at every motivated forward
  against the token count minus the patch grid.
* **Final tokens (Eq. 10-11).** The encoder's ``last_hidden_state``: what every one of these heads pools.
* **Head (Eq. 12-13).** The region mean r goes to ``classifier`` as the model's own pooled feature does: a
  class-token head (ViT-MSN) takes r for the class token; a mean-pooling head (IJEPA, SigLIP, CLIP) takes r; DINOv2's
  head reads ``cat(class token, patch mean)`` and takes ``cat(r, r)``.

The hand-wired transformers families (ViT, DeiT, BEiT, Swin, PVT) are registered before this one and keep their
files for what this path does not serve; each says why in its docstring.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from smmix_hf.backbones.attention_interface import AttentionRecorder, record_attention, restore_implementation
from smmix_hf.backbones.base import Backbone, patch_grid, register_backbone, require_classifier
from smmix_hf.tokens import image_attention_score

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["TransformersAttentionBackbone", "classifier_class_of", "vision_config_of"]

# Parameters of an embeddings module that each add tokens in front of the patch tokens (class, distillation,
# registers; CLIP names its class token ``class_embedding``).
PREFIX_PARAMETERS = ("cls_token", "distillation_token", "register_tokens", "class_embedding")


def classifier_class_of(config: PretrainedConfig) -> type | None:
    """The class ``AutoModelForImageClassification`` builds for ``config``, or None."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    name = MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES.get(config.model_type)
    return getattr(transformers, name, None) if isinstance(name, str) else None


def vision_config_of(config: PretrainedConfig) -> PretrainedConfig:
    """The configuration of the image encoder: ``vision_config`` of a two-tower model (SigLIP, CLIP), else itself."""
    return getattr(config, "vision_config", None) or config


@register_backbone
class TransformersAttentionBackbone(Backbone):
    """A transformers image classifier whose attention goes through the attention interface."""

    name = "transformers"
    num_prefix_tokens = 0  # the class default; an instance reads the model's embeddings
    fallback: ClassVar[bool] = True
    """Matched after the hand-wired transformers families; not a ``model_type`` of its own in messages."""

    def __init__(self, model: nn.Module) -> None:
        require_classifier(model, type(model).__name__)
        super().__init__(model)
        self.encoder = self._encoder_of(model)
        self.attention = self._last_attention_of(model)
        self.num_prefix_tokens = self._prefix_tokens_of(self.encoder)
        self.recorder: AttentionRecorder | None = None

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        if config.model_type == "timm_wrapper":
            return False
        model_class = classifier_class_of(config)
        return bool(getattr(model_class, "_supports_attention_backend", False))

    short_names: ClassVar[dict[str, str]] = {
        "dinov2-small": "facebook/dinov2-small",
        "siglip-base": "google/siglip-base-patch16-224",
    }
    recipe_image_size: ClassVar[int] = 224
    """The resolution a short name's checkpoint is built at from scratch (DINOv2's configuration says 518 px)."""

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        """The architecture of the checkpoint's ``config.json`` (both ship without a classifier: the classifier
        built from it gets a new head), at :attr:`recipe_image_size`."""
        from transformers import Dinov2Config, SiglipConfig

        if hub_id == "facebook/dinov2-small":
            return Dinov2Config(
                hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, patch_size=14,
                image_size=cls.recipe_image_size, layerscale_value=1.0, layer_norm_eps=1e-6, qkv_bias=True,
                use_swiglu_ffn=False, drop_path_rate=0.0,
            )  # fmt: skip
        if hub_id == "google/siglip-base-patch16-224":
            vision = dict(
                hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, patch_size=16,
                image_size=cls.recipe_image_size,
            )  # fmt: skip
            return SiglipConfig(vision_config=vision)
        return None

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig:
        """DINOv2 with four registers from :data:`~smmix_hf.backbones.tested_models.TRANSFORMERS_TESTED`: the generic
        path's prefix tokens, its last-layer capture and a head that reads ``cat(class token, patch mean)`` at once."""
        from smmix_hf.backbones.tested_models import tiny_config

        return tiny_config("dinov2-registers", **overrides)

    # ---- reading the model ----

    @staticmethod
    def _encoder_of(model: nn.Module) -> nn.Module:
        """The one child that is not the classifier: the encoder whose output carries ``last_hidden_state``."""
        children = [child for name, child in model.named_children() if name != "classifier"]
        if len(children) != 1:
            names = ", ".join(name for name, _ in model.named_children())
            raise ValueError(
                f"SMMix reads {type(model).__name__} as an encoder and a classifier, but it has the parts {names}; "
                "see docs/backbones.md for the models that work."
            )
        return children[0]

    @staticmethod
    def _last_attention_of(model: nn.Module) -> nn.Module:
        """The last instance of the class the model records its attentions from."""
        recorded = (getattr(type(model), "_can_record_outputs", None) or {}).get("attentions")
        attention_class = getattr(recorded, "target_class", recorded)
        if not isinstance(attention_class, type):
            attention_class = ()
        found = [module for module in model.modules() if isinstance(module, attention_class)]
        if not found:
            raise ValueError(
                f"SMMix found no attention module in {type(model).__name__} (it looked for the class named in "
                "_can_record_outputs['attentions']); see docs/backbones.md for the models that work."
            )
        return found[-1]

    @staticmethod
    def _prefix_tokens_of(encoder: nn.Module) -> int:
        embeddings = getattr(encoder, "embeddings", None)
        count = 0
        for name in PREFIX_PARAMETERS:
            parameter = getattr(embeddings, name, None)
            if isinstance(parameter, torch.Tensor):
                count += parameter.shape[1] if name == "register_tokens" else 1
        return count

    # ---- the motivated forward ----

    def attach(self) -> None:
        self.recorder = record_attention(self.model, self.attention)

    def release(self) -> None:
        restore_implementation(self.model, self.attention)
        self.recorder = None

    @contextmanager
    def motivated_forward_context(self) -> Iterator[None]:
        """Arms the last attention module: this forward's probabilities are kept."""
        if self.recorder is None:
            self.attach()
        self.recorder.armed = True
        try:
            yield
        finally:
            self.recorder.armed = False

    def attention_capture_modules(self) -> tuple[nn.Module, ...]:
        return ()

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """Eq. 6 from the probabilities the armed last attention module formed, ``[B, gh, gw]``."""
        probabilities = self.recorder.take() if self.recorder is not None else None
        if probabilities is None:
            raise RuntimeError(
                f"the last attention module of {type(self.model).__name__} ({type(self.attention).__name__}) formed "
                "no probabilities during the motivated forward; SMMix cannot place its windows."
            )
        grid = self.token_grid(image_size)
        tokens = probabilities.shape[-1]
        if tokens - grid[0] * grid[1] != self.num_prefix_tokens:
            raise RuntimeError(
                f"{type(self.model).__name__}'s last attention sees {tokens} tokens, but a {grid[0]}x{grid[1]} patch "
                f"grid and {self.num_prefix_tokens} prefix tokens make {grid[0] * grid[1] + self.num_prefix_tokens}."
            )
        scores = image_attention_score(probabilities, self.num_prefix_tokens)
        return scores.view(scores.shape[0], *grid)

    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        patch = vision_config_of(self.config).patch_size
        patch = (patch, patch) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))
        return patch_grid(image_size, patch, "the patch size")

    def fixed_input_size(self) -> tuple[int, int] | None:
        """None for embeddings that always resample their position embeddings to the input (DINOv2: no
        ``interpolate_pos_encoding`` switch in their forward), else the declared size (a motivator resizes to it)."""
        embeddings = getattr(self.encoder, "embeddings", None)
        always_resampled = callable(getattr(embeddings, "interpolate_pos_encoding", None)) and (
            "interpolate_pos_encoding" not in inspect.signature(embeddings.forward).parameters
        )
        return None if always_resampled else self.declared_image_size()

    def declared_image_size(self) -> tuple[int, int] | None:
        size = getattr(vision_config_of(self.config), "image_size", None)
        if size is None:
            return None
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    # ---- the mixed forward ----

    def final_norm(self) -> nn.Module:
        return self.encoder

    def final_tokens(self, output: object) -> torch.Tensor:
        sequence = getattr(output, "last_hidden_state", None)
        return sequence if sequence is not None else output[0]  # type: ignore[index]

    def classifier(self) -> nn.Module:
        return self.model.classifier

    def region_head_features(self, means: torch.Tensor) -> torch.Tensor:
        """``cat(r, r)`` for a head that reads two features side by side (DINOv2: class token, patch mean)."""
        in_features = getattr(self.classifier(), "in_features", means.shape[-1])
        if in_features == 2 * means.shape[-1]:
            return torch.cat((means, means), dim=-1)
        return means
