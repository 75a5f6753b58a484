"""The data options of training: sources, columns, splits, transforms and the learning-rate rule's batch."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DataArguments"]


@dataclass
class DataArguments:
    """Which images to train on, how to read and transform them, and the learning-rate scaling rule.

    The transform defaults are the DeiT recipe (timm's RandAugment ``rand-m9-mstd0.5-inc1``, random
    erasing 0.25, bicubic random resized crops with flips). ``base_learning_rate`` scales the learning
    rate with the global batch: lr = base_learning_rate × global_batch / base_batch_size.
    """

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A dataset for `datasets.load_dataset` (Hub id or local path), or 'sklearn-digits' for the "
            "handwritten digits bundled with scikit-learn."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    dataset_revision: str | None = field(
        default=None, metadata={"help": "Branch, tag or commit of a Hub dataset (default: its main branch)."}
    )
    train_dir: str | None = field(default=None, metadata={"help": "An image folder (one sub-folder per class)."})
    validation_dir: str | None = field(default=None, metadata={"help": "An image folder to evaluate on."})
    train_files: str | None = field(
        default=None,
        metadata={
            "help": "Training shards: WebDataset .tar or .parquet files, as a glob and / or a comma-separated list, "
            "e.g. 'shards/train-*.tar'."
        },
    )
    validation_files: str | None = field(
        default=None, metadata={"help": "Evaluation shards, written like --train_files."}
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Stream the training split (an IterableDataset read shard by shard, shuffled through a buffer) "
            "instead of preparing it as an Arrow table first. Needs max_steps, which is derived from the split's "
            "size (split info, parquet metadata, an image folder's file count or --num_train_examples)."
        },
    )
    shuffle_buffer_size: int = field(
        default=10_000, metadata={"help": "Streaming: examples in the shuffle buffer (0 keeps the stored order)."}
    )
    num_train_examples: int | None = field(
        default=None,
        metadata={"help": "Streaming: the training split's size, when the data cannot tell it (WebDataset tars)."},
    )
    image_column_name: str = field(default="image", metadata={"help": "Column holding the images."})
    label_column_name: str = field(default="label", metadata={"help": "Column holding the integer labels."})
    label_names_file: str | None = field(
        default=None,
        metadata={
            "help": "A text file naming the classes, one per line (line k names class k), for data whose label "
            "column is plain integers (WebDataset .cls files). Default: the ClassLabel names, or the label values."
        },
    )
    train_val_split: float = field(
        default=0.15, metadata={"help": "Share of train held out for evaluation when no validation split exists."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on N samples, shuffled with --seed first."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on N samples, shuffled with --seed first."}
    )
    strict_images: bool = field(
        default=False,
        metadata={
            "help": "Stop at the first image that does not decode, naming the file. Default: skip it, count it and "
            "log the count at the end of each epoch."
        },
    )
    eval_class_subset: str | None = field(
        default=None,
        metadata={
            "help": "A text file restricting evaluation to a subset of the model's classes (ImageNet-A / -R: 200 of "
            "1000): line k holds the model's class id or label name for evaluation label k."
        },
    )
    crop_scale_min: float = field(
        default=0.08, metadata={"help": "Lower bound of RandomResizedCrop's area share (DeiT: 0.08)."}
    )
    crop_scale_max: float = field(default=1.0, metadata={"help": "Upper bound of RandomResizedCrop's area share."})
    crop_ratio_min: float = field(default=3 / 4, metadata={"help": "Lower bound of the crops' aspect ratio."})
    crop_ratio_max: float = field(default=4 / 3, metadata={"help": "Upper bound of the crops' aspect ratio."})
    horizontal_flip: bool = field(default=True, metadata={"help": "Random horizontal flips in training."})
    interpolation: str | None = field(
        default=None,
        metadata={"help": "Resampling filter of crops and resizes (DeiT: bicubic); unset keeps the checkpoint's."},
    )
    auto_augment: str = field(
        default="rand-m9-mstd0.5-inc1",
        metadata={"help": "timm auto-augmentation policy (DeiT: RandAugment 'rand-m9-mstd0.5-inc1'); 'none' = off."},
    )
    color_jitter: float = field(
        default=0.4,
        metadata={"help": "Colour jitter strength; timm (and DeiT) apply it only when auto_augment is 'none'."},
    )
    random_erasing: float = field(default=0.25, metadata={"help": "Random erasing probability (DeiT: 0.25)."})
    random_erasing_mode: str = field(
        default="pixel", metadata={"help": "What erased boxes are filled with: const, rand or pixel (DeiT)."}
    )
    random_erasing_count: int = field(default=1, metadata={"help": "Most boxes erased per image."})
    crop_pct: float | None = field(
        default=None,
        metadata={
            "help": "Evaluation resizes to size / crop_pct, then centre-crops to size; unset keeps the "
            "checkpoint's processor (its crop_size / size, or timm's pretrained_cfg)."
        },
    )
    base_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate per base_batch_size images: lr = base_learning_rate × global batch / "
            "base_batch_size, global batch = processes × per-device batch × accumulation steps (DeiT: 5e-4). "
            "Exclusive with --learning_rate."
        },
    )
    base_batch_size: int = field(default=512, metadata={"help": "The batch size base_learning_rate refers to."})
    decode_on_device: bool = field(
        default=False,
        metadata={
            "help": "Decode the training JPEGs on the GPU (torchvision.io.decode_jpeg, nvJPEG) and crop, resize, flip "
            "and RandAugment them there, from the workers' draws; PNGs and CMYK or grayscale JPEGs stay on the CPU "
            "path, as does everything without CUDA. Not with --streaming."
        },
    )
