"""What a backbone family must provide to SMMix, and the registry of families.

SMMix needs four things from a model: the attention of its last self-attention block (for the image
attention score, Eq. 6), the token grid that score lives on, the final-layer image tokens (for the
region labels, Eq. 10-11) and the head that turns pooled tokens into logits. A family is one module
under ``smmix_hf/backbones/`` with one :class:`Backbone` subclass per ``model_type`` it reads,
registered with :func:`register_backbone`. The class also carries the family's short names (→ Hub
ids) and the configurations it builds from scratch.

Most models need no family of their own: two generic families, registered after the hand-wired ones, read any
transformers classifier on the attention interface (:mod:`smmix_hf.backbones.transformers_generic`) and any timm
model whose last block has timm's ``fused_attn`` / ``attn_drop`` pattern (:mod:`smmix_hf.backbones.timm_attention`).
The hand-wired families recompute attention from what the last block computes anyway (its query and key
projections, or CaiT's talking-heads logits). Either way the last block's attention is formed during the no-grad
motivated forward only (:meth:`Backbone.motivated_forward_context`), and every other forward keeps the model's SDPA
(or any other) kernel, which never materialises the attention matrix.

This module imports neither timm nor any family. A timm family reads a timm model either inside
``TimmWrapperForImageClassification`` (``model_type: timm_wrapper``, ``config.architecture``) or as
``timm.create_model`` returns it (no ``config``; ``pretrained_cfg["architecture"]`` and the class); it matches
on the timm class's name and touches timm only through the model it is given.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from smmix_hf.tokens import image_attention_score

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "Backbone",
    "QueryKeyBackbone",
    "TimmBackbone",
    "backbone_class_for",
    "backbone_for",
    "patch_grid",
    "register_backbone",
    "registered_backbones",
    "require_classifier",
    "split_heads",
    "timm_architecture",
    "timm_module_of",
]

_REGISTRY: dict[str, type[Backbone]] = {}


class Backbone(abc.ABC):
    """One architecture as SMMix reads it. A family subclasses this and registers the subclass.

    Class attributes a family sets:
        name: the name in messages and in the registry: the ``model_type`` it reads (``"vit"``), or for a
            timm family the architecture family (``"cait"``).
        num_prefix_tokens: class / distillation tokens in front of the image tokens in the sequence that
            :meth:`final_norm` returns; :meth:`image_tokens` drops them.
        short_names: short name → Hub id (``{"deit-tiny": "facebook/deit-tiny-patch16-224"}``); every
            Hub id here needs a fixture in ``tests/fixtures/hub/`` and a from-scratch configuration.

    Members a family must provide (abstract): :meth:`matches`, :meth:`scratch_config`,
    :meth:`final_norm`, :meth:`classifier`, :meth:`attention_capture_modules`,
    :meth:`scores_from_captures` and :meth:`token_grid`. For the tests it also gives :meth:`tiny_config`.
    """

    name: ClassVar[str]
    num_prefix_tokens: ClassVar[int]
    short_names: ClassVar[dict[str, str]] = {}

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.config = getattr(model, "config", None)  # None for a raw timm model

    # ---- which models and names belong to the family ----

    @classmethod
    @abc.abstractmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        """Whether a model with ``config`` belongs to this class (read the config, import nothing)."""

    @classmethod
    def matches_model(cls, model: nn.Module) -> bool:
        """Whether ``model`` belongs to this class (default: its ``config`` :meth:`matches`)."""
        config = getattr(model, "config", None)
        return config is not None and cls.matches(config)

    @classmethod
    @abc.abstractmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        """The architecture of ``hub_id`` (one of :attr:`short_names`' ids) built without the network, else None."""

    @classmethod
    def prepare_config(cls, config: PretrainedConfig) -> None:
        """Adjust a configuration before a trainable classifier is built from it (default: nothing)."""
        return None

    @classmethod
    def timm_model_args_for_image_size(cls, size: int) -> dict[str, object]:
        """Extra timm ``create_model`` arguments that an ``image_size`` override needs (default: none)."""
        return {}

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig | None:
        """A small configuration of the family, changed by ``overrides``: 32 px input, 10 classes, a few tokens
        per side. The generic tests build every registered family from it; None (the default) means the family
        gives none, which ``tests/test_adding_a_backbone.py`` reports."""
        return None

    # ---- what the probe reads ----

    @property
    def backbone(self) -> nn.Module:
        """The encoder inside the classifier (``model.<base_model_prefix>``)."""
        return getattr(self.model, self.model.base_model_prefix)

    @abc.abstractmethod
    def final_norm(self) -> nn.Module:
        """The module whose output is the final-layer token sequence ``[B, T, D]`` the regions are pooled from."""

    @abc.abstractmethod
    def classifier(self) -> nn.Module:
        """The linear head whose output is the logits; the probe splits the region logits off its output."""

    def head_input(self) -> nn.Module:
        """The first module that receives the pooled feature ``[B, D]`` (default: the classifier).

        The probe appends the two region means to this module's input, so everything between it and
        :meth:`classifier` (e.g. BEiT's pooler norm) is applied to them as to the model's own pooled feature.
        """
        return self.classifier()

    @abc.abstractmethod
    def attention_capture_modules(self) -> tuple[nn.Module, ...]:
        """The modules whose outputs the probe keeps during the motivated forward."""

    @abc.abstractmethod
    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """Eq. 6 score ``[B, gh, gw]`` from the outputs of :meth:`attention_capture_modules`, in that order."""

    @abc.abstractmethod
    def token_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The ``(gh, gw)`` grid of image tokens for an input of ``image_size`` pixels."""

    def image_tokens(self, sequence: torch.Tensor) -> torch.Tensor:
        """The image tokens ``[B, N, D]`` of the final sequence, prefix tokens removed."""
        return sequence[:, self.num_prefix_tokens :]

    def attach(self) -> None:
        """Called once by the probe that reads this model, before its hooks go on (default: nothing)."""
        return None

    def release(self) -> None:
        """Called when that probe is removed: undo :meth:`attach` (default: nothing)."""
        return None

    @property
    def reads_class_attention(self) -> bool:
        """Whether the class token's attention in the last block can be formed during a forward with gradients
        (TransMix): a class token, and queries and keys the family can read (:class:`QueryKeyBackbone`)."""
        return self.num_prefix_tokens > 0 and isinstance(self, QueryKeyBackbone)

    def motivated_forward_context(self) -> AbstractContextManager[None]:
        """Entered around the motivated forward only: what the model must do differently for
        :meth:`attention_capture_modules` to see the last block's attention (default: nothing). timm's generic
        family switches the last block's fused kernel off here; every other forward keeps it."""
        return nullcontext()

    def final_tokens(self, output: object) -> torch.Tensor:
        """The final sequence ``[B, T, D]`` from :meth:`final_norm`'s forward output (default: the output itself; a
        module that returns a model output gives its ``last_hidden_state``)."""
        return output  # type: ignore[return-value]

    def region_head_features(self, means: torch.Tensor) -> torch.Tensor:
        """The head's input for region means ``[2B, D]`` (Eq. 12-13): what the model feeds its head in place of its
        own pooled feature (default: the means; DINOv2's head reads ``cat(class token, patch mean)``: ``cat(r, r)``)."""
        return means

    def declared_image_size(self) -> tuple[int, int] | None:
        """The input size of the model as built (the configuration's ``image_size``), or None if it takes any."""
        size = getattr(self.config, "image_size", None)
        if size is None:
            return None
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def fixed_input_size(self) -> tuple[int, int] | None:
        """The input size the model requires, if its configuration fixes one (a motivator resizes to it)."""
        return self.declared_image_size()


def patch_grid(image_size: tuple[int, int], patch: tuple[int, int], what: str) -> tuple[int, int]:
    """The token grid of non-overlapping ``patch``-pixel tokens; ``what`` names the patch in the error."""
    height, width = image_size
    if height % patch[0] or width % patch[1]:
        side = patch[0] if patch[0] == patch[1] else f"{patch[0]}x{patch[1]}"
        raise ValueError(
            f"image size {height}x{width} is not divisible by {what} {side}; resize images to a multiple of {side}."
        )
    return height // patch[0], width // patch[1]


class QueryKeyBackbone(Backbone):
    """A family whose score is ``softmax(q·kᵀ·scale + bias)`` of the last block, from its query and key outputs.

    A subclass names the projections (:meth:`query_key_projections`), the head size and scale, and any
    additive bias (:meth:`attention_bias`, e.g. a relative position bias).
    """

    @abc.abstractmethod
    def query_key_projections(self) -> tuple[nn.Module, nn.Module]:
        """The modules whose outputs are the last block's queries and keys ``[B', T, heads·d]``."""

    @abc.abstractmethod
    def head_dim_and_scale(self) -> tuple[int, float]:
        """Per-head width and the logit scale of the last block."""

    def attention_bias(self, image_size: tuple[int, int]) -> torch.Tensor | None:
        """An additive bias on the last block's attention logits, broadcastable to ``[B', heads, T, T]``."""
        return None

    def attention_capture_modules(self) -> tuple[nn.Module, ...]:
        return self.query_key_projections()

    def scores_from_captures(self, captures: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        query, key = captures
        return self.score_grid(query, key, image_size)

    def attention_probabilities(
        self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Softmax attention ``[B', heads, T, T]`` from the projected query and key ``[B', T, heads·d]``."""
        head_dim, scale = self.head_dim_and_scale()
        query, key = split_heads(query, head_dim), split_heads(key, head_dim)
        logits = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
        bias = self.attention_bias(image_size)
        if bias is not None:
            logits = logits + bias.float()
        return logits.softmax(dim=-1)

    def score_grid(self, query: torch.Tensor, key: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Image attention score (Eq. 6) of every image token, on the token grid: ``[B, gh, gw]``."""
        grid = self.token_grid(image_size)
        probabilities = self.attention_probabilities(query, key, image_size)
        scores = image_attention_score(probabilities, self.num_prefix_tokens)
        return scores.view(scores.shape[0], *grid)


def split_heads(states: torch.Tensor, head_dim: int) -> torch.Tensor:
    """``[B, T, heads·d]`` → ``[B, heads, T, d]``."""
    return states.view(*states.shape[:-1], -1, head_dim).transpose(1, 2)


def require_classifier(model: nn.Module, class_hint: str) -> None:
    """Refuse a transformers model without a trainable ``classifier`` head (e.g. a bare encoder)."""
    if not isinstance(getattr(model, "classifier", None), nn.Module):
        raise ValueError(
            f"{type(model).__name__} has no trainable `classifier` head; load the model with "
            f"AutoModelForImageClassification (e.g. {class_hint})."
        )


def timm_module_of(model: nn.Module) -> nn.Module | None:
    """The timm model of ``model``: ``model.timm_model`` inside ``TimmWrapperForImageClassification``, the model
    itself when timm built it (a class from the ``timm`` package), else None. Imports nothing."""
    inner = getattr(model, "timm_model", None)
    if isinstance(inner, nn.Module):
        return inner
    if getattr(model, "config", None) is None and type(model).__module__.split(".")[0] == "timm":
        return model
    return None


def timm_architecture(model: nn.Module) -> str:
    """The timm architecture name of a wrapped or raw timm model (``config.architecture``, else
    ``pretrained_cfg["architecture"]``), else the timm class's name."""
    architecture = getattr(getattr(model, "config", None), "architecture", None)
    module = timm_module_of(model)
    if not architecture and module is not None:
        architecture = (getattr(module, "pretrained_cfg", None) or {}).get("architecture")
    return architecture or type(module if module is not None else model).__name__


class TimmBackbone(Backbone):
    """A timm model, raw (``timm.create_model``) or inside ``TimmWrapperForImageClassification``.

    A family sets :attr:`timm_classes` (the names of the timm classes it reads; a model matches on its class)
    and :attr:`architecture_prefix` (timm's architecture names of the family start with it; a configuration
    matches on it, e.g. to pick ``create_model`` arguments before the model exists). :attr:`backbone` is the
    timm model in both cases, and the classifier is timm's ``head``. Nothing here imports timm. A family that
    reads queries and keys also subclasses :class:`QueryKeyBackbone` (after this class).
    """

    architecture_prefix: ClassVar[str | tuple[str, ...]]
    timm_classes: ClassVar[tuple[str, ...]]
    tiny_architecture: ClassVar[str]
    """The timm architecture :meth:`tiny_config` builds, shrunk by :attr:`tiny_model_args`."""
    tiny_model_args: ClassVar[dict[str, object]]
    """``timm.create_model`` arguments of the family's tiny test model (32 px input, a few tokens per side)."""

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig | None:
        """:attr:`tiny_architecture` with :attr:`tiny_model_args` and 10 classes, as a ``TimmWrapperConfig``;
        ``overrides`` are ``timm.create_model`` arguments. None when the family names no tiny architecture."""
        from transformers import TimmWrapperConfig

        if not hasattr(cls, "tiny_architecture"):
            return None
        model_args = {**cls.tiny_model_args, **overrides}
        return TimmWrapperConfig(architecture=cls.tiny_architecture, num_labels=10, model_args=model_args)

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.require_linear_head()

    def require_linear_head(self) -> None:
        """Refuse a timm model built without a classifier (``num_classes=0`` leaves ``nn.Identity``)."""
        if not isinstance(self.classifier(), nn.Linear):
            raise ValueError(
                f"{type(self.model).__name__} is a timm {self.name} without a classifier head; create it with "
                "num_classes > 0 (timm.create_model(..., num_classes=N) or TimmWrapperForImageClassification)."
            )

    @classmethod
    def matches(cls, config: PretrainedConfig) -> bool:
        architecture = getattr(config, "architecture", None) or ""
        return config.model_type == "timm_wrapper" and architecture.startswith(cls.architecture_prefix)

    @classmethod
    def matches_model(cls, model: nn.Module) -> bool:
        module = timm_module_of(model)
        return module is not None and type(module).__name__ in cls.timm_classes

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        if hub_id not in cls.short_names.values():
            return None
        from transformers import TimmWrapperConfig

        # timm Hub ids are "timm/<architecture>.<pretrained tag>".
        return TimmWrapperConfig(architecture=hub_id.removeprefix("timm/").split(".")[0])

    @property
    def backbone(self) -> nn.Module:
        module = timm_module_of(self.model)
        return module if module is not None else self.model

    def classifier(self) -> nn.Module:
        return self.backbone.head

    def declared_image_size(self) -> tuple[int, int] | None:
        """The size the timm model was built for (``patch_embed.img_size``: ``create_model(img_size=...)`` sets it,
        ``pretrained_cfg["input_size"]`` does not), or None when it takes any size (``dynamic_img_size``)."""
        patch_embed = getattr(self.backbone, "patch_embed", None)
        size = getattr(patch_embed, "img_size", None)
        dynamic = getattr(self.backbone, "dynamic_img_size", False) or getattr(patch_embed, "dynamic_img_size", False)
        if size is None or dynamic:
            return None
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def fixed_input_size(self) -> tuple[int, int] | None:
        patch_embed = getattr(self.backbone, "patch_embed", None)
        if getattr(patch_embed, "strict_img_size", False) and not getattr(patch_embed, "dynamic_img_size", False):
            return tuple(patch_embed.img_size)
        return None


def register_backbone(cls: type[Backbone]) -> type[Backbone]:
    """Class decorator: add a family's :class:`Backbone` subclass to the registry.

    Refuses a class that leaves an abstract member out, lacks ``name`` or ``num_prefix_tokens``, or whose
    name or short names are taken.
    """
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    missing += [attribute for attribute in ("name", "num_prefix_tokens") if not hasattr(cls, attribute)]
    if missing:
        raise TypeError(f"backbone {cls.__name__} must provide: {', '.join(missing)}.")
    if cls.name in _REGISTRY:
        raise ValueError(f"a backbone named {cls.name!r} is already registered ({_REGISTRY[cls.name].__name__}).")
    taken = {alias for other in _REGISTRY.values() for alias in other.short_names}
    clashes = sorted(taken & set(cls.short_names))
    if clashes:
        raise ValueError(f"backbone {cls.name!r}: short names already registered: {', '.join(clashes)}.")
    _REGISTRY[cls.name] = cls
    return cls


def registered_backbones() -> tuple[type[Backbone], ...]:
    """Every registered family class, in registration order."""
    return tuple(_REGISTRY.values())


def backbone_class_for(config: PretrainedConfig) -> type[Backbone] | None:
    """The registered class a configuration belongs to, or None."""
    for cls in _REGISTRY.values():
        if cls.matches(config):
            return cls
    return None


def backbone_for(model: nn.Module) -> Backbone:
    """The :class:`Backbone` of ``model`` (a transformers model, a timm model, or a timm model inside
    ``TimmWrapperForImageClassification``); an unsupported model gets an error naming the supported families."""
    for cls in _REGISTRY.values():
        if cls.matches_model(model):
            return cls(model)
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    timm_families = [family for family in _REGISTRY.values() if issubclass(family, TimmBackbone)]
    timm_names = ", ".join(family.name for family in timm_families)
    timm_classes = ", ".join(name for family in timm_families for name in family.timm_classes)
    model_types = ", ".join(
        family.name
        for family in _REGISTRY.values()
        if not issubclass(family, TimmBackbone) and not getattr(family, "fallback", False)
    )
    see = "see docs/backbones.md for the models that work"
    module = timm_module_of(model)
    if module is not None:
        what = f"{'wrapped ' if module is not model else ''}{type(module).__name__}"
        raise ValueError(
            f"SMMix does not support the timm architecture {timm_architecture(model)!r} ({what}); "
            f"supported timm families: {timm_names} (timm classes {timm_classes}); SMMix looked for a last attention "
            f"block (blocks[-1].attn) with fused_attn and attn_drop, and found none; {see}."
        )
    if config is None:
        raise ValueError(
            f"SMMix cannot read the attention of {type(model).__name__}: supported are transformers image "
            f"classifiers (model types {model_types}) and timm models ({timm_classes}), raw or in "
            f"TimmWrapperForImageClassification; {see}."
        )
    raise ValueError(
        f"SMMix does not support model_type {model_type!r} ({type(model).__name__}); "
        f"supported model types: {model_types} (timm_wrapper: {timm_names}), and any transformers image classifier "
        f"on the attention interface: SMMix looked for _supports_attention_backend = True on "
        f"{type(model).__name__}, and it is not there; {see}."
    )
