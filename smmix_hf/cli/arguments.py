"""Command-line arguments beside :class:`~smmix_hf.SMMixConfig`: the model and the data."""

from __future__ import annotations

from dataclasses import dataclass, field

from smmix_hf.backbones.names import model_name_help
from smmix_hf.data.arguments import DataArguments

__all__ = ["DataArguments", "ModelArguments"]


@dataclass
class ModelArguments:
    """Which model to train, how to build it, and what its model card says about it."""

    model_name_or_path: str = field(
        metadata={
            "aliases": ["--model"],
            "help": f"Hub id, local directory or short name ({model_name_help()}).",
        }
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Build the architecture with random weights from a built-in config (no network)."},
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Override model config values: 'image_size=32,patch_size=4,hidden_size=96'."},
    )
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Replace a pretrained head whose class count differs from the dataset's."},
    )
    motivator_model: str | None = field(
        default=None,
        metadata={
            "help": "A frozen pre-trained classifier (local directory, Hub id or short name) whose attention and "
            "clean logits drive SMMix instead of the model under training (paper Tab. 9). Default: self-motivated."
        },
    )
    license: str | None = field(
        default=None,
        metadata={"help": "The model card's license, a Hub license id (e.g. apache-2.0, mit, cc-by-nc-4.0)."},
    )
    language: list[str] | None = field(
        default=None, metadata={"help": "The model card's languages (ISO 639-1 codes, e.g. en), for labels in words."}
    )
    tags: list[str] | None = field(
        default=None,
        metadata={"help": "Extra tags for the model card, besides image-classification, smmix and vision."},
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models are cached."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of the model."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models and datasets."})
