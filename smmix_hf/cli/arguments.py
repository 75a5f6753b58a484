"""Command-line arguments beside :class:`~smmix_hf.SMMixConfig`: the model and the data."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelArguments:
    """Which model to train and how to build it."""

    model_name_or_path: str = field(
        metadata={
            "aliases": ["--model"],
            "help": "Hub id, local directory or short name (deit-tiny, deit-small, deit-base, "
            "facebook/deit-small, deit-small-distilled, swin-tiny, swin-small, swin-base, vit-base).",
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
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models are cached."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of the model."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models and datasets."})


@dataclass
class DataArguments:
    """Which images to train on and how to transform them."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A dataset for `datasets.load_dataset` (Hub id or local path), or 'sklearn-digits' for the "
            "handwritten digits bundled with scikit-learn."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    train_dir: str | None = field(default=None, metadata={"help": "An image folder (one sub-folder per class)."})
    validation_dir: str | None = field(default=None, metadata={"help": "An image folder to evaluate on."})
    image_column_name: str = field(default="image", metadata={"help": "Column holding the images."})
    label_column_name: str = field(default="label", metadata={"help": "Column holding the integer labels."})
    train_val_split: float = field(
        default=0.15, metadata={"help": "Share of train held out for evaluation when no validation split exists."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on the first N samples only."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on the first N samples only."})
    crop_scale_min: float = field(
        default=0.08, metadata={"help": "Lower bound of RandomResizedCrop's area scale (upper bound 1)."}
    )
    horizontal_flip: bool = field(default=True, metadata={"help": "Random horizontal flips in training."})
    crop_pct: float = field(
        default=0.875, metadata={"help": "Evaluation resizes to size / crop_pct, then centre-crops to size."}
    )
