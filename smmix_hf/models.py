"""Model names, built-in architectures for training from scratch, and loading.

Short names resolve to real Hub ids: ``deit-small`` and ``facebook/deit-small`` both mean
``facebook/deit-small-patch16-224``. ``from_scratch`` builds the architecture from a built-in
configuration with random weights and needs no network (the paper trains from scratch).
"""

from __future__ import annotations

import os

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    DeiTConfig,
    PretrainedConfig,
    PreTrainedModel,
    PvtConfig,
    SwinConfig,
    TimmWrapperConfig,
    TimmWrapperImageProcessor,
    ViTConfig,
)
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from smmix_hf.data.transforms import TransformSettings, evaluation_image_processor

__all__ = ["MODEL_ALIASES", "build_image_processor", "builtin_config", "load_model", "resolve_model_name"]

_DEIT_SHAPES = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
_SWIN_SHAPES = {
    "tiny": (96, [2, 2, 6, 2], [3, 6, 12, 24]),
    "small": (96, [2, 2, 18, 2], [3, 6, 12, 24]),
    "base": (128, [2, 2, 18, 2], [4, 8, 16, 32]),
}

MODEL_ALIASES: dict[str, str] = {}
for _size in _DEIT_SHAPES:
    MODEL_ALIASES[f"deit-{_size}"] = f"facebook/deit-{_size}-patch16-224"
    MODEL_ALIASES[f"facebook/deit-{_size}"] = f"facebook/deit-{_size}-patch16-224"
    MODEL_ALIASES[f"deit-{_size}-distilled"] = f"facebook/deit-{_size}-distilled-patch16-224"
for _size in _SWIN_SHAPES:
    MODEL_ALIASES[f"swin-{_size}"] = f"microsoft/swin-{_size}-patch4-window7-224"
    MODEL_ALIASES[f"microsoft/swin-{_size}"] = f"microsoft/swin-{_size}-patch4-window7-224"
MODEL_ALIASES["vit-base"] = "google/vit-base-patch16-224"
_PVT_DEPTHS = {"tiny": [2, 2, 2, 2], "small": [3, 4, 6, 3]}
for _size in _PVT_DEPTHS:
    MODEL_ALIASES[f"pvt-{_size}"] = f"Zetatech/pvt-{_size}-224"
# timm backbones of the paper's Tab. 1, wrapped by TimmWrapperForImageClassification: alias -> (Hub id, architecture).
_TIMM_MODELS = {"cait-xxs24": ("timm/cait_xxs24_224.fb_dist_in1k", "cait_xxs24_224")}
_TIMM_MODELS["cait-xxs36"] = ("timm/cait_xxs36_224.fb_dist_in1k", "cait_xxs36_224")
for _size in range(6):
    _TIMM_MODELS[f"pvt-v2-b{_size}"] = (f"timm/pvt_v2_b{_size}.in1k", f"pvt_v2_b{_size}")
for _alias, (_hub_id, _) in _TIMM_MODELS.items():
    MODEL_ALIASES[_alias] = _hub_id


def resolve_model_name(name: str) -> str:
    """A short name's Hub id; local paths and full ids come back unchanged."""
    if os.path.isdir(name):
        return name
    return MODEL_ALIASES.get(name.lower(), name)


def builtin_config(model_id: str) -> PretrainedConfig:
    """The architecture of a known Hub id, built without the network."""
    for size, (width, heads) in _DEIT_SHAPES.items():
        common = dict(
            hidden_size=width,
            num_hidden_layers=12,
            num_attention_heads=heads,
            intermediate_size=4 * width,
            image_size=224,
            patch_size=16,
            qkv_bias=True,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        if model_id == f"facebook/deit-{size}-patch16-224":
            return ViTConfig(**common)
        if model_id == f"facebook/deit-{size}-distilled-patch16-224":
            return DeiTConfig(**common)
    for size, (embed_dim, depths, heads) in _SWIN_SHAPES.items():
        if model_id == f"microsoft/swin-{size}-patch4-window7-224":
            return SwinConfig(
                image_size=224,
                patch_size=4,
                embed_dim=embed_dim,
                depths=depths,
                num_heads=heads,
                window_size=7,
                drop_path_rate=0.1 if size == "tiny" else 0.3,
            )
    for size, depths in _PVT_DEPTHS.items():
        if model_id == f"Zetatech/pvt-{size}-224":
            return PvtConfig(depths=depths, hidden_sizes=[64, 128, 320, 512], drop_path_rate=0.1)
    if model_id == "google/vit-base-patch16-224":
        return ViTConfig()
    for hub_id, architecture in _TIMM_MODELS.values():
        if model_id == hub_id:
            return TimmWrapperConfig(architecture=architecture)
    known = ", ".join(sorted(set(MODEL_ALIASES)))
    raise ValueError(f"no built-in architecture for {model_id!r} to train from scratch; known names: {known}.")


def _trainable_head(config: PretrainedConfig) -> None:
    """Pick the classifier class that trains with labels where a checkpoint names an inference-only one.

    The distilled DeiT checkpoints name ``DeiTForImageClassificationWithTeacher`` (two heads, no labels);
    ``AutoModelForImageClassification`` builds the class that ``architectures`` names.
    """
    if config.model_type == "deit":
        config.architectures = ["DeiTForImageClassification"]


def _scratch_config(name_or_path: str) -> PretrainedConfig:
    if os.path.isdir(name_or_path):
        return AutoConfig.from_pretrained(name_or_path)
    return builtin_config(name_or_path)


def load_model(
    model_name_or_path: str,
    *,
    id2label: dict[int, str],
    from_scratch: bool = False,
    config_overrides: str | None = None,
    ignore_mismatched_sizes: bool = False,
    **hub_kwargs: object,
) -> PreTrainedModel:
    """An image classifier for the labels ``id2label``.

    ``from_scratch`` builds the architecture (built-in config for known ids, or the ``config.json`` of a
    local directory) with random weights; otherwise weights come from ``from_pretrained`` (the Hub or a
    local directory). ``config_overrides`` is ``"key=value,key=value"`` applied to the configuration.
    """
    resolved = resolve_model_name(model_name_or_path)
    label2id = {label: index for index, label in id2label.items()}
    if from_scratch:
        config = _scratch_config(resolved)
        if config_overrides:
            _apply_overrides(config, config_overrides)
        config.num_labels, config.id2label, config.label2id = len(id2label), id2label, label2id
        _trainable_head(config)
        return AutoModelForImageClassification.from_config(config)
    config = AutoConfig.from_pretrained(resolved, **hub_kwargs)
    if config.num_labels != len(id2label) and not ignore_mismatched_sizes:
        raise ValueError(
            f"{resolved} has a classifier for {config.num_labels} classes but the dataset has {len(id2label)}; "
            "pass --ignore_mismatched_sizes to replace the head with a new one."
        )
    if config_overrides:
        _apply_overrides(config, config_overrides)
    config.id2label, config.label2id = id2label, label2id
    _trainable_head(config)
    return AutoModelForImageClassification.from_pretrained(
        resolved, config=config, ignore_mismatched_sizes=ignore_mismatched_sizes, **hub_kwargs
    )


def _override_value(text: str) -> object:
    """``"32"`` -> 32, ``"0.1"`` -> 0.1, ``"true"`` -> True, ``"2/2/6/2"`` -> (2, 2, 6, 2), else the text."""
    if "/" in text:
        return tuple(_override_value(part) for part in text.split("/"))
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _apply_overrides(config: PretrainedConfig, overrides: str) -> None:
    """``"key=value,..."`` onto the config; for a timm model they are ``timm.create_model`` arguments.

    For timm models ``image_size=N`` sets the input size (CaiT's ``img_size`` and the size the image
    processor uses) and tuples are written with ``/``: ``depths=1/1``.
    """
    if not isinstance(config, TimmWrapperConfig):
        config.update_from_string(overrides)
        return
    model_args = dict(config.model_args or {})
    for item in overrides.split(","):
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"config override {item!r} is not key=value; write e.g. 'image_size=32,depth=4'.")
        model_args[key.strip()] = _override_value(value.strip())
    if "image_size" in model_args:
        size = int(model_args.pop("image_size"))
        model_args["pretrained_cfg_overlay"] = {"input_size": (3, size, size)}
        if config.architecture.startswith("cait"):
            model_args["img_size"] = size
    config.model_args = model_args


def build_image_processor(model: PreTrainedModel, model_name_or_path: str, from_scratch: bool, **hub_kwargs: object):
    """The checkpoint's image processor; for a model from scratch, the ImageNet evaluation convention.

    A timm model from scratch gets its ``pretrained_cfg`` (input size, ``crop_pct``, interpolation, mean and
    std) through ``TimmWrapperImageProcessor``; any other model built from scratch gets a processor that
    resizes to ``config.image_size / 0.875``, centre-crops ``config.image_size`` (bicubic) and normalises with
    the ImageNet mean and std, as DeiT evaluates.
    """
    resolved = resolve_model_name(model_name_or_path)
    if not from_scratch or os.path.isfile(os.path.join(resolved, "preprocessor_config.json")):
        return AutoImageProcessor.from_pretrained(resolved, **hub_kwargs)
    timm_model = getattr(model, "timm_model", None)
    if timm_model is not None:
        return TimmWrapperImageProcessor(pretrained_cfg=dict(timm_model.pretrained_cfg))
    size = model.config.image_size
    side = size[-1] if isinstance(size, (list, tuple)) else size
    settings = TransformSettings(
        image_size=int(side), mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, crop_pct=0.875
    )
    return evaluation_image_processor(settings)
