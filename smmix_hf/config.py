"""``SMMixConfig``: ``TrainingArguments`` plus every SMMix knob, with the paper's defaults but one (the warm-up)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from smmix_hf.backbones.region_head import REGION_HEADS
from smmix_hf.draws import REGION_SAMPLINGS
from smmix_hf.methods import LABEL_REWEIGHTINGS, MIX_METHODS, MixSettings, build_mix_method
from smmix_hf.methods.base import DEFAULT_MOTIVATION_WARMUP_RATIO

__all__ = ["SMMixConfig"]

CONSISTENCY_TARGETS = ("logits", "probs")
WARMUP_MIXINGS = ("random_windows", "cutmix", "cutmix_then_random_windows")


@dataclass
class SMMixConfig(TrainingArguments):
    """Training arguments for :class:`~smmix_hf.SMMixTrainer`.

    Defaults follow the paper's ImageNet recipe (SMMix in place of CutMix in the DeiT recipe,
    alternating with Mixup at p = 0.5, label smoothing 0.1), except one: for the first 25% of the optimizer steps
    (``motivation_warmup_ratio``; 0 gives the paper's schedule; off by default when a trained motivator places the
    windows) SMMix batches are CutMix batches, then, for the second half of that share, random windows with L_fine,
    without L_con either way (``motivation_warmup_mixing``). Two ``TrainingArguments``
    defaults change: ``label_smoothing_factor`` is 0.1 and applies to every soft target, and
    ``remove_unused_columns`` is False so the image column survives for on-the-fly transforms.
    """

    mix_method: str = field(
        default="smmix",
        metadata={
            "help": "How training batches are mixed: smmix (the paper), cutmix or mixup (baselines in the "
            "same trainer), transmix (CutMix windows with TransMix labels, Chen et al. CVPR 2022), or none.",
            "choices": list(MIX_METHODS),
        },
    )
    mixup_switch_prob: float = field(
        default=0.5,
        metadata={
            "help": "Probability that a mixed smmix / cutmix / transmix batch uses its window method; Mixup "
            "otherwise (the DeiT switch). Same meaning as timm's switch_prob (the probability of CutMix) and the "
            "official SMMix code's --mixup-switch-prob (the probability of SMMix)."
        },
    )
    mix_prob: float = field(
        default=1.0,
        metadata={"help": "Probability that a batch is mixed at all (timm's mixup_prob); otherwise it trains unmixed."},
    )
    mix_off_epoch: float | None = field(
        default=None,
        metadata={"help": "No mixing from this epoch on (timm's --mixup-off-epoch); unset mixes to the end."},
    )
    cutmix_minmax: list[float] | None = field(
        default=None,
        metadata={
            "help": "CutMix box side shares MIN MAX, drawn uniformly, instead of λ ~ Beta(cutmix_alpha) (timm's "
            "cutmix_minmax).",
            "nargs": 2,
        },
    )
    per_process_draws: bool = field(
        default=False,
        metadata={
            "help": "Each process draws its own mix method and window size (seed + rank), as the official code "
            "does. Off by default: with shared draws every process does the same kind of step, whereas with "
            "independent draws a multi-process step almost always waits for some process doing SMMix's extra "
            "forward."
        },
    )
    mixup_alpha: float = field(default=0.8, metadata={"help": "Mixup's λ ~ Beta(α, α)."})
    cutmix_alpha: float = field(default=1.0, metadata={"help": "CutMix's λ ~ Beta(α, α)."})
    region_scale_min: float = field(
        default=0.25,
        metadata={
            "help": "Lower bound of SMMix's window side ratio (Eq. 7). Tab. 8: 0.25-0.75 (default), 0.5-0.5 "
            "(fixed), 0-1. Windows keep at least one token and leave the target at least one."
        },
    )
    region_scale_max: float = field(default=0.75, metadata={"help": "Upper bound of the window side ratio (<= 1)."})
    region_sampling: str = field(
        default="official",
        metadata={
            "help": "How the window side is drawn on a g×g token grid. official: an integer side uniformly from "
            "⌊min·g⌋ … ⌊max·g⌋ (the code behind the paper's numbers). continuous: δ ~ U(min, max), side ⌊δ·g⌋ "
            "(the paper's wording; the two end sizes get half the weight).",
            "choices": list(REGION_SAMPLINGS),
        },
    )
    max_min_regions: bool = field(
        default=True,
        metadata={
            "help": "Pick the source's most attended and the target's least attended window (Eq. 7-8). "
            "False draws both windows at random token-aligned positions (Tab. 7 ablation)."
        },
    )
    motivation_warmup_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Share of the run's optimizer steps, in [0, 1), during which SMMix batches are mixed as "
            "motivation_warmup_mixing says, with no L_con, before max-min windows and L_con take over. Unset: "
            f"{DEFAULT_MOTIVATION_WARMUP_RATIO}, or 0 when a trained motivator places the windows; 0: from the "
            "first step, as the paper. A model's attention does not find the objects early in training (see "
            "docs/evidence.md). It counts this run's max_steps: resuming with a longer schedule moves "
            "its end."
        },
    )
    motivation_warmup_epochs: float | None = field(
        default=None,
        metadata={
            "help": "The motivation warm-up in epochs instead: above 0, it replaces motivation_warmup_ratio (give "
            "only one above 0). A streamed split counts its passes as epochs; use the ratio there."
        },
    )
    motivation_warmup_mixing: str = field(
        default="cutmix_then_random_windows",
        metadata={
            "help": "How SMMix batches of the motivation warm-up are mixed: random_windows (SMMix's window sizes at "
            "random places, with L_cls and L_fine), cutmix (CutMix's box and label, L_cls only: a warm-up batch "
            "draws and trains exactly as a CutMix batch would) or cutmix_then_random_windows (cutmix for the first "
            "half of the warm-up, random_windows for the second).",
            "choices": list(WARMUP_MIXINGS),
        },
    )
    cls_loss_weight: float = field(default=1.0, metadata={"help": "Weight of L_cls, the mixed-label CE (Eq. 9)."})
    fine_loss_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of L_fine, the region-level CE (Eq. 10-13); 0 switches it off (Tab. 7)."},
    )
    consistency_loss_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of L_con, the KL consistency (Eq. 14); 0 switches it off (Tab. 7)."},
    )
    consistency_target: str = field(
        default="logits",
        metadata={
            "help": "Target of L_con: 'logits' = softmax of the λ-mixed clean logits (official code), "
            "'probs' = λ-mix of the clean predictions (the paper's wording).",
            "choices": list(CONSISTENCY_TARGETS),
        },
    )
    region_head: str = field(
        default="shared",
        metadata={
            "help": "Linear layer that turns the pooled window tokens into L_fine's region logits (Eq. 12-13): "
            "'shared' = the model's classifier (the paper's wording); 'separate' = a second head of the same "
            "shape (the official code). The separate head trains with the model but is left out of its saved "
            "weights; it is kept beside them in smmix_region_head.safetensors for resuming. Runs with DDP and FSDP2 "
            "(not FSDP1 or DeepSpeed).",
            "choices": list(REGION_HEADS),
        },
    )
    label_reweighting: str = field(
        default="none",
        metadata={
            "help": "Re-weight the mixed label of a window method per sample. transmix: λ = ½(area share + the "
            "class token's attention inside the window), read from the mixed forward's last block (SMMix + "
            "TransMix, the paper's Tab. 6); needs a model with a class token. none: λ is the area share.",
            "choices": list(LABEL_REWEIGHTINGS),
        },
    )
    save_mix_examples: int = field(
        default=0,
        metadata={
            "help": "Save a PNG grid of the first N images of the latest SMMix / CutMix batch at every logging step "
            "(output_dir/mix_examples; also to TensorBoard when it reports): source, target, their attention "
            "maps, the mixed image with both windows and its labels. 0 keeps nothing."
        },
    )
    label_smoothing_factor: float = field(
        default=0.1, metadata={"help": "Label smoothing ε in every soft target (L_cls, L_fine and Mixup/CutMix)."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train into an output_dir that already holds another run, replacing it."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Kept False: on-the-fly image transforms need the raw image column."},
    )

    def __post_init__(self) -> None:
        if self.cutmix_minmax is not None:
            self.cutmix_minmax = [float(value) for value in self.cutmix_minmax]
        super().__post_init__()
        self.validate_smmix()

    def validate_smmix(self) -> None:
        """Raise a one-line ``ValueError`` for any SMMix setting that cannot work."""
        if self.mix_method not in MIX_METHODS:
            raise ValueError(f"mix_method must be one of {', '.join(MIX_METHODS)}; got {self.mix_method!r}.")
        if self.label_reweighting not in LABEL_REWEIGHTINGS:
            raise ValueError(
                f"label_reweighting must be one of {', '.join(LABEL_REWEIGHTINGS)}; got {self.label_reweighting!r}."
            )
        for name in ("mixup_switch_prob", "mix_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}.")
        if self.mix_off_epoch is not None and self.mix_off_epoch < 0:
            raise ValueError(f"mix_off_epoch must be >= 0 (or unset to mix to the end); got {self.mix_off_epoch}.")
        if self.cutmix_minmax is not None and (
            len(self.cutmix_minmax) != 2 or not 0.0 < self.cutmix_minmax[0] <= self.cutmix_minmax[1] <= 1.0
        ):
            raise ValueError(f"cutmix_minmax must be two shares 0 < MIN <= MAX <= 1; got {self.cutmix_minmax}.")
        if self.region_sampling not in REGION_SAMPLINGS:
            raise ValueError(
                f"region_sampling must be one of {', '.join(REGION_SAMPLINGS)}; got {self.region_sampling!r}."
            )
        for name in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"{name} must be > 0 (it parameterises a Beta distribution); got {getattr(self, name)}."
                )
        if not 0.0 <= self.region_scale_min <= self.region_scale_max <= 1.0:
            raise ValueError(
                "need 0 <= region_scale_min <= region_scale_max <= 1; got "
                f"region_scale_min={self.region_scale_min}, region_scale_max={self.region_scale_max}."
            )
        for name in ("cls_loss_weight", "fine_loss_weight", "consistency_loss_weight", "motivation_warmup_epochs"):
            if getattr(self, name) is not None and not getattr(self, name) >= 0:  # NaN is refused too
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}.")
        if self.motivation_warmup_ratio is not None and not 0.0 <= self.motivation_warmup_ratio < 1.0:
            raise ValueError(f"motivation_warmup_ratio must be in [0, 1); got {self.motivation_warmup_ratio}.")
        if (self.motivation_warmup_ratio or 0.0) > 0 and (self.motivation_warmup_epochs or 0.0) > 0:
            raise ValueError(
                "give motivation_warmup_ratio or motivation_warmup_epochs above 0, not both; got "
                f"{self.motivation_warmup_ratio} and {self.motivation_warmup_epochs}."
            )
        if self.motivation_warmup_mixing not in WARMUP_MIXINGS:
            raise ValueError(
                f"motivation_warmup_mixing must be one of {', '.join(WARMUP_MIXINGS)}; "
                f"got {self.motivation_warmup_mixing!r}."
            )
        if self.consistency_target not in CONSISTENCY_TARGETS:
            raise ValueError(
                f"consistency_target must be one of {', '.join(CONSISTENCY_TARGETS)}; got {self.consistency_target!r}."
            )
        if self.region_head not in REGION_HEADS:
            raise ValueError(f"region_head must be one of {', '.join(REGION_HEADS)}; got {self.region_head!r}.")
        if self.region_head == "separate":
            if self.mix_method != "smmix" or self.fine_loss_weight == 0:
                raise ValueError(
                    "region_head=separate gives L_fine its own head, so it needs mix_method=smmix with "
                    f"fine_loss_weight > 0; got mix_method={self.mix_method}, fine_loss_weight={self.fine_loss_weight}."
                )
            fsdp_version = int((self.fsdp_config or {}).get("version", 2)) if self.fsdp else None
            if self.deepspeed or fsdp_version == 1:
                raise ValueError(
                    "region_head=separate saves and restores its head itself, which works with DDP and FSDP2 only; "
                    "use FSDP2 (fsdp_version: 2) or region_head=shared."
                )
        if self.save_mix_examples < 0:
            raise ValueError(f"save_mix_examples must be >= 0 (0 saves none); got {self.save_mix_examples}.")
        if not 0.0 <= self.label_smoothing_factor < 1.0:
            raise ValueError(f"label_smoothing_factor must be in [0, 1); got {self.label_smoothing_factor}.")
        method = build_mix_method(MixSettings.from_config(self), self.seed)
        batch = self.per_device_train_batch_size
        if method.pairs_images and (batch < 2 or batch % 2):
            raise ValueError(
                f"mix_method={self.mix_method} pairs every image with another one in its device batch, so "
                f"per_device_train_batch_size must be even and >= 2; got {batch}. Use an even batch size "
                "or mix_method=none."
            )

    @property
    def region_scale(self) -> tuple[float, float]:
        return self.region_scale_min, self.region_scale_max
