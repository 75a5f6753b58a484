"""Loading an image classifier: from the Hub, a local directory or a built-in architecture (from scratch).

Short names and from-scratch architectures come from the backbone registry (:mod:`smmix_hf.backbones`).
"""

from __future__ import annotations

import os

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    PretrainedConfig,
    PreTrainedModel,
    TimmWrapperConfig,
    TimmWrapperImageProcessor,
)
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from smmix_hf.backbones import backbone_class_for, builtin_config, resolve_model_name
from smmix_hf.backbones.transformers_generic import vision_config_of
from smmix_hf.data.transforms import TransformSettings, evaluation_image_processor

__all__ = ["build_image_processor", "load_model"]


def _trainable_head(config: PretrainedConfig) -> None:
    """Let the family adjust the configuration, e.g. pick a classifier class that trains with labels.

    ``AutoModelForImageClassification`` builds the class that ``architectures`` names; the distilled DeiT
    checkpoints name an inference-only one.
    """
    family = backbone_class_for(config)
    if family is not None:
        family.prepare_config(config)


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
    if config.num_labels != len(id2label) and not ignore_mismatched_sizes and _has_classifier(config):
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


def _has_classifier(config: PretrainedConfig) -> bool:
    """Whether the checkpoint was saved with a classifier. A backbone (DINOv2's ``Dinov2Model``, SigLIP's
    ``SiglipModel``) has none: the classifier built from it gets a new head sized by the data's labels."""
    architectures = getattr(config, "architectures", None) or []
    return not architectures or any(name.endswith("ForImageClassification") for name in architectures)


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

    For timm models ``image_size=N`` sets the input size (the size the image processor uses, and whatever
    the family needs with it, e.g. CaiT's ``img_size``) and tuples are written with ``/``: ``depths=1/1``.
    """
    if not isinstance(config, TimmWrapperConfig):
        # A two-tower model (SigLIP, CLIP) keeps the image encoder's shape in vision_config.
        vision_config_of(config).update_from_string(overrides)
        _realign_backbone_outputs(vision_config_of(config))
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
        family = backbone_class_for(config)
        if family is not None:
            model_args.update(family.timm_model_args_for_image_size(size))
    config.model_args = model_args


def _realign_backbone_outputs(config: PretrainedConfig) -> None:
    """DINOv2's configuration also describes a backbone: ``stage_names`` (``stem``, then one stage per layer) and
    ``out_features`` (the last stage) are set when it is made. A ``num_hidden_layers`` override leaves them at the old
    depth, and the saved ``config.json`` then fails to load; they follow the new depth here."""
    stages = getattr(config, "stage_names", None)
    layers = getattr(config, "num_hidden_layers", None)
    if stages and isinstance(layers, int) and len(stages) != layers + 1:
        config.stage_names = ["stem", *(f"stage{index}" for index in range(1, layers + 1))]
        config.set_output_features_output_indices(out_features=None, out_indices=None)


def build_image_processor(model: PreTrainedModel, model_name_or_path: str, from_scratch: bool, **hub_kwargs: object):
    """The checkpoint's image processor; for a model from scratch, the ImageNet evaluation convention.

    A timm model from scratch gets its ``pretrained_cfg`` (input size, ``crop_pct``, interpolation, mean and
    std) through ``TimmWrapperImageProcessor``; any other model built from scratch gets a processor that
    resizes to ``config.image_size / 0.875``, centre-crops ``config.image_size`` (bicubic) and normalises with
    the ImageNet mean and std, as DeiT evaluates (a two-tower model's size is in ``vision_config``).
    """
    resolved = resolve_model_name(model_name_or_path)
    if not from_scratch or os.path.isfile(os.path.join(resolved, "preprocessor_config.json")):
        return AutoImageProcessor.from_pretrained(resolved, **hub_kwargs)
    timm_model = getattr(model, "timm_model", None)
    if timm_model is not None:
        return TimmWrapperImageProcessor(pretrained_cfg=dict(timm_model.pretrained_cfg))
    size = vision_config_of(model.config).image_size
    side = size[-1] if isinstance(size, (list, tuple)) else size
    settings = TransformSettings(
        image_size=int(side), mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, crop_pct=0.875
    )
    return evaluation_image_processor(settings)
