"""``SMMixConfig``: ``TrainingArguments`` plus every SMMix setting, which it takes from ``MixSettings``."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import TrainingArguments

from smmix_hf.methods import build_mix_method
from smmix_hf.settings import MixSettings, help_from_docstring

__all__ = ["SMMixConfig"]


@dataclass
@help_from_docstring
class SMMixConfig(MixSettings, TrainingArguments):
    """Training arguments for :class:`~smmix_hf.SMMixTrainer`: ``TrainingArguments`` and the fields of
    :class:`~smmix_hf.MixSettings` (declared there, with their defaults, help and checks: the paper's ImageNet
    recipe but for the motivation warm-up), and the settings of the Trainer run below (a loop of your own has the
    task's ``seed`` and ``task.last_mix_example`` instead). ``label_smoothing_factor`` is ``MixSettings``' own: 0.1,
    applied by SMMix in every soft target, while the Trainer's label smoother never runs.

    Parameters of the Trainer run:
        per_process_draws (`bool`, *optional*, defaults to `False`):
            Each process draws its own mix method and window size (seed + rank), as the official code does. Off by
            default: with shared draws every process does the same kind of step, whereas with independent draws a
            multi-process step almost always waits for some process doing SMMix's extra forward.
        save_mix_examples (`int`, *optional*, defaults to `0`):
            Save a PNG grid of the first N images of the latest SMMix / CutMix batch at every logging step
            (output_dir/mix_examples; also to TensorBoard when it reports): source, target, their attention maps,
            the mixed image with both windows and its labels. 0 keeps nothing.
        trust_checkpoint (`bool`, *optional*, defaults to `False`):
            Resume from a checkpoint whose smmix_hf files (the draw state, the stream position) hold pickled Python
            objects, e.g. one written by an earlier version, by unpickling them in full. Only for a checkpoint from a
            source you trust: unpickling can run any code. Without it such a file is refused.
        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Train into an output_dir that already holds another run, replacing it.
        remove_unused_columns (`bool`, *optional*, defaults to `False`):
            TrainingArguments' field, kept False: on-the-fly image transforms need the raw image column.
    """

    per_process_draws: bool = False
    save_mix_examples: int = 0
    trust_checkpoint: bool = False
    overwrite_output_dir: bool = False
    remove_unused_columns: bool = False

    def __post_init__(self) -> None:
        MixSettings.__post_init__(self)
        TrainingArguments.__post_init__(self)
        self.check_trainer_settings()

    def check_trainer_settings(self) -> None:
        """Raise a one-line ``ValueError`` for a mixing setting this Trainer run cannot train with."""
        if self.region_head == "separate":
            fsdp_version = int((self.fsdp_config or {}).get("version", 2)) if self.fsdp else None
            if self.deepspeed or fsdp_version == 1:
                raise ValueError(
                    "region_head=separate saves and restores its head itself, which works with DDP and FSDP2 only; "
                    "use FSDP2 (fsdp_version: 2) or region_head=shared."
                )
        if self.save_mix_examples < 0:
            raise ValueError(f"save_mix_examples must be >= 0 (0 saves none); got {self.save_mix_examples}.")
        method = build_mix_method(self.resolve(motivator_given=False), self.seed)
        batch = self.per_device_train_batch_size
        if method.pairs_images and (batch < 2 or batch % 2):
            raise ValueError(
                f"mix_method={self.mix_method} pairs every image with another one in its device batch, so "
                f"per_device_train_batch_size must be even and >= 2; got {batch}. Use an even batch size "
                "or mix_method=none."
            )
