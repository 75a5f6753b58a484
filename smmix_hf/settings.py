"""``MixSettings``: every SMMix setting, declared once, checked when it is built.

``SMMixConfig`` (the Trainer's arguments and the command line) inherits these fields, so a loop and the command
line share each name, type, default, help text and check: a bad value fails at construction with the same one
line in both. The help text of each field is its entry in the class docstring (:func:`help_from_docstring`).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import MISSING, Field, dataclass, field, fields, replace

from smmix_hf.draws import REGION_SAMPLINGS

__all__ = [
    "CONSISTENCY_TARGETS",
    "DEFAULT_MOTIVATION_WARMUP_RATIO",
    "WARMUP_MIXINGS",
    "DefaultValue",
    "MixSettings",
    "docstring_entries",
    "help_from_docstring",
]

CONSISTENCY_TARGETS = ("logits", "probs")
WARMUP_MIXINGS = ("random_windows", "cutmix", "cutmix_then_random_windows")

# The share of a run's optimizer steps that SMMix trains without its own attention or L_con before its own
# attention places the windows, when neither ``motivation_warmup_ratio`` nor ``motivation_warmup_epochs`` is
# given and no trained motivator places them. docs/evidence.md measures it against 0, the paper's schedule, on
# local-object data.
DEFAULT_MOTIVATION_WARMUP_RATIO = 0.25

_ENTRY = re.compile(r"^ {8}(?P<name>\w+) \((?P<spec>.+)\):$")


class DefaultValue(float):
    """A default that another setting may still change: a float equal to the default, which
    :meth:`MixSettings.resolve` can tell apart from the same value given on purpose (the motivation warm-up, which
    a trained motivator turns off unless it was asked for)."""

    def __repr__(self) -> str:
        return float.__repr__(self)


def docstring_entries(doc: str) -> dict[str, tuple[str, str]]:
    """``{name: (spec, text)}`` of a TRL-style docstring: ``name (spec):`` indented 8 spaces, its text below it."""
    entries: dict[str, tuple[str, str]] = {}
    name = None
    for line in doc.splitlines():
        match = _ENTRY.match(line)
        if match:
            name = match["name"]
            if name in entries:
                raise ValueError(f"the docstring describes {name} twice.")
            entries[name] = (match["spec"], "")
        elif name is not None and line.startswith(" " * 12) and line.strip():
            spec, text = entries[name]
            entries[name] = (spec, f"{text} {line.strip()}".strip())
        else:
            name = None
    return entries


def help_from_docstring(cls: type) -> type:
    """Give every field declared in ``cls`` its docstring entry as its ``help`` (shown by ``--help``), before
    ``@dataclass`` reads the fields. A field without an entry, or an entry without a field, is an error."""
    entries = docstring_entries(cls.__doc__ or "")
    declared = list(inspect.get_annotations(cls))
    if set(entries) != set(declared):
        raise TypeError(f"{cls.__name__}'s docstring and fields differ: {sorted(set(entries) ^ set(declared))}.")
    for name in declared:
        value = cls.__dict__.get(name, MISSING)
        metadata = dict(value.metadata) if isinstance(value, Field) else {}
        default = value.default if isinstance(value, Field) else value
        setattr(cls, name, field(default=default, metadata={**metadata, "help": entries[name][1]}))
    return cls


@dataclass
@help_from_docstring
class MixSettings:
    """Every setting of the mixing methods, with the paper's defaults but one: the motivation warm-up
    (``motivation_warmup_ratio``, the first 25% of the optimizer steps; 0 gives the paper's schedule). Each field is
    also a flag of the command line and a key of its YAML recipes (``SMMixConfig`` inherits them). A value that
    cannot work is refused here, in one line.

    Parameters that choose the method:
        mix_method (`str`, *optional*, defaults to `"smmix"`):
            How training batches are mixed: smmix (the paper), cutmix or mixup (baselines in the same trainer),
            transmix (CutMix windows with TransMix labels, Chen et al. CVPR 2022), or none.
        mixup_switch_prob (`float`, *optional*, defaults to `0.5`):
            Probability that a mixed smmix / cutmix / transmix batch uses its window method; Mixup otherwise (the
            DeiT switch). Same meaning as timm's switch_prob (the probability of CutMix) and the official SMMix
            code's --mixup-switch-prob (the probability of SMMix).
        mix_prob (`float`, *optional*, defaults to `1.0`):
            Probability that a batch is mixed at all (timm's mixup_prob); otherwise it trains unmixed.
        mix_off_epoch (`float | None`, *optional*, defaults to `None`):
            No mixing from this epoch on (timm's --mixup-off-epoch); unset mixes to the end.

    Parameters of the draws:
        mixup_alpha (`float`, *optional*, defaults to `0.8`):
            Mixup's λ ~ Beta(α, α).
        cutmix_alpha (`float`, *optional*, defaults to `1.0`):
            CutMix's λ ~ Beta(α, α).
        cutmix_minmax (`list[float] | None`, *optional*, defaults to `None`):
            CutMix box side shares MIN MAX, drawn uniformly, instead of λ ~ Beta(cutmix_alpha) (timm's
            cutmix_minmax).
        region_scale_min (`float`, *optional*, defaults to `0.25`):
            Lower bound of SMMix's window side ratio (Eq. 7). Tab. 8: 0.25-0.75 (default), 0.5-0.5 (fixed), 0-1.
            Windows keep at least one token and leave the target at least one. ``region_scale`` reads both bounds.
        region_scale_max (`float`, *optional*, defaults to `0.75`):
            Upper bound of the window side ratio (<= 1).
        region_sampling (`str`, *optional*, defaults to `"official"`):
            How the window side is drawn on a g×g token grid. official: an integer side uniformly from ⌊min·g⌋ …
            ⌊max·g⌋ (the code behind the paper's numbers). continuous: δ ~ U(min, max), side ⌊δ·g⌋ (the paper's
            wording; the two end sizes get half the weight).

    Parameters of SMMix's windows and losses:
        max_min_regions (`bool`, *optional*, defaults to `True`):
            Pick the source's most attended and the target's least attended window (Eq. 7-8). False draws both
            windows at random token-aligned positions (Tab. 7 ablation).
        motivation_warmup_ratio (`float`, *optional*, defaults to `0.25`):
            Share of the run's optimizer steps, in [0, 1), during which SMMix batches are mixed as
            motivation_warmup_mixing says, with no L_con, before max-min windows and L_con take over. Not the
            paper's: 0 starts them at the first step, as the paper does. Left at its default (or None), it is 0 when a
            trained motivator places the windows. A model's attention does not find the objects early in training (see
            docs/evidence.md). It counts this run's max_steps: resuming with a longer schedule moves its end.
        motivation_warmup_epochs (`float`, *optional*, defaults to `0.0`):
            The motivation warm-up in epochs instead: above 0, it replaces motivation_warmup_ratio (give only one
            above 0). A streamed split counts its passes as epochs; use the ratio there.
        motivation_warmup_mixing (`str`, *optional*, defaults to `"cutmix_then_random_windows"`):
            How SMMix batches of the motivation warm-up are mixed: random_windows (SMMix's window sizes at random
            places, with L_cls and L_fine), cutmix (CutMix's box and label, L_cls only: a warm-up batch draws and
            trains exactly as a CutMix batch would) or cutmix_then_random_windows (cutmix for the first half of the
            warm-up, random_windows for the second).
        cls_loss_weight (`float`, *optional*, defaults to `1.0`):
            Weight of L_cls, the mixed-label CE (Eq. 9).
        fine_loss_weight (`float`, *optional*, defaults to `1.0`):
            Weight of L_fine, the region-level CE (Eq. 10-13); 0 switches it off (Tab. 7).
        consistency_loss_weight (`float`, *optional*, defaults to `1.0`):
            Weight of L_con, the KL consistency (Eq. 14); 0 switches it off (Tab. 7).
        consistency_target (`str`, *optional*, defaults to `"logits"`):
            Target of L_con: logits = softmax of the λ-mixed clean logits (official code), probs = λ-mix of the
            clean predictions (the paper's wording).
        region_head (`str`, *optional*, defaults to `"shared"`):
            Linear layer that turns the pooled window tokens into L_fine's region logits (Eq. 12-13): shared = the
            model's classifier (the paper's wording); separate = a second head of the same shape (the official
            code). The separate head trains with the model but is left out of its saved weights; it is kept beside
            them in smmix_region_head.safetensors for resuming. Runs with DDP and FSDP2 (not FSDP1 or DeepSpeed).
        label_smoothing_factor (`float`, *optional*, defaults to `0.1`):
            Label smoothing ε in every soft target (L_cls, L_fine and Mixup/CutMix). The same field as
            TrainingArguments' label_smoothing_factor, with the paper's default: SMMix applies it, once, and the
            Trainer's own label smoother never runs (SMMixTrainer's loss is the task's). ``label_smoothing`` reads
            it.
        label_reweighting (`str`, *optional*, defaults to `"none"`):
            Re-weight the mixed label of a window method per sample. transmix: λ = ½(area share + the class token's
            attention inside the window), read from the mixed forward's last block (SMMix + TransMix, the paper's
            Tab. 6); needs a model with a class token. none: λ is the area share.
    """

    mix_method: str = "smmix"
    mixup_switch_prob: float = 0.5
    mix_prob: float = 1.0
    mix_off_epoch: float | None = None
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    cutmix_minmax: list[float] | None = field(default=None, metadata={"nargs": 2})
    region_scale_min: float = 0.25
    region_scale_max: float = 0.75
    region_sampling: str = "official"
    max_min_regions: bool = True
    motivation_warmup_ratio: float = DefaultValue(DEFAULT_MOTIVATION_WARMUP_RATIO)
    motivation_warmup_epochs: float = 0.0
    motivation_warmup_mixing: str = "cutmix_then_random_windows"
    cls_loss_weight: float = 1.0
    fine_loss_weight: float = 1.0
    consistency_loss_weight: float = 1.0
    consistency_target: str = "logits"
    region_head: str = "shared"
    label_smoothing_factor: float = 0.1
    label_reweighting: str = "none"

    def __post_init__(self) -> None:
        if self.motivation_warmup_ratio is None:  # unset: the default (a quarter, or none with a motivator)
            self.motivation_warmup_ratio = DefaultValue(DEFAULT_MOTIVATION_WARMUP_RATIO)
        if self.cutmix_minmax is not None:
            self.cutmix_minmax = [float(value) for value in self.cutmix_minmax]
        self.check_mix_settings()

    @property
    def region_scale(self) -> tuple[float, float]:
        """The window side ratio's bounds ``(region_scale_min, region_scale_max)``."""
        return self.region_scale_min, self.region_scale_max

    @property
    def label_smoothing(self) -> float:
        """ε of every soft target (``label_smoothing_factor``)."""
        return self.label_smoothing_factor

    def resolve(self, *, motivator_given: bool) -> MixSettings:
        """These settings with the motivation warm-up made explicit: ``motivation_warmup_epochs`` when above 0;
        else ``motivation_warmup_ratio``, whose default is no warm-up when ``motivator_given`` (a trained motivator
        places the windows, Tab. 9)."""
        ratio = self.motivation_warmup_ratio
        if self.motivation_warmup_epochs > 0 or (motivator_given and isinstance(ratio, DefaultValue)):
            ratio = 0.0
        values = {item.name: getattr(self, item.name) for item in fields(MixSettings)}
        return replace(MixSettings(**values), motivation_warmup_ratio=float(ratio))

    @classmethod
    def from_config(cls, config: MixSettings, *, motivator_given: bool = False) -> MixSettings:
        """The settings of an ``SMMixConfig`` (or any ``MixSettings``), resolved (see :meth:`resolve`)."""
        return config.resolve(motivator_given=motivator_given)

    def check_mix_settings(self) -> None:
        """Raise a one-line ``ValueError`` for any setting that cannot work."""
        from smmix_hf.backbones.region_head import REGION_HEADS
        from smmix_hf.methods import LABEL_REWEIGHTINGS, MIX_METHODS

        _check_choice("mix_method", self.mix_method, MIX_METHODS)
        _check_choice("label_reweighting", self.label_reweighting, LABEL_REWEIGHTINGS)
        for name in ("mixup_switch_prob", "mix_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}.")
        if self.mix_off_epoch is not None and not self.mix_off_epoch >= 0:
            raise ValueError(f"mix_off_epoch must be >= 0 (or unset to mix to the end); got {self.mix_off_epoch}.")
        if self.cutmix_minmax is not None and (
            len(self.cutmix_minmax) != 2 or not 0.0 < self.cutmix_minmax[0] <= self.cutmix_minmax[1] <= 1.0
        ):
            raise ValueError(f"cutmix_minmax must be two shares 0 < MIN <= MAX <= 1; got {self.cutmix_minmax}.")
        _check_choice("region_sampling", self.region_sampling, REGION_SAMPLINGS)
        for name in ("mixup_alpha", "cutmix_alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"{name} must be > 0 (it parameterises a Beta distribution); got {getattr(self, name)}."
                )
        if not 0.0 <= self.region_scale_min <= self.region_scale_max <= 1.0:
            raise ValueError(
                "need 0 <= region_scale_min <= region_scale_max <= 1; got "
                f"region_scale_min={self.region_scale_min}, region_scale_max={self.region_scale_max}."
            )
        for name in ("cls_loss_weight", "fine_loss_weight", "consistency_loss_weight", "motivation_warmup_epochs"):
            if not getattr(self, name) >= 0:  # NaN is refused too
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}.")
        if not 0.0 <= self.motivation_warmup_ratio < 1.0:
            raise ValueError(f"motivation_warmup_ratio must be in [0, 1); got {self.motivation_warmup_ratio}.")
        given_ratio = 0.0 if isinstance(self.motivation_warmup_ratio, DefaultValue) else self.motivation_warmup_ratio
        if given_ratio > 0 and self.motivation_warmup_epochs > 0:
            raise ValueError(
                "give motivation_warmup_ratio or motivation_warmup_epochs above 0, not both; got "
                f"{self.motivation_warmup_ratio} and {self.motivation_warmup_epochs}."
            )
        _check_choice("motivation_warmup_mixing", self.motivation_warmup_mixing, WARMUP_MIXINGS)
        _check_choice("consistency_target", self.consistency_target, CONSISTENCY_TARGETS)
        _check_choice("region_head", self.region_head, REGION_HEADS)
        if self.region_head == "separate" and (self.mix_method != "smmix" or self.fine_loss_weight == 0):
            raise ValueError(
                "region_head=separate gives L_fine its own head, so it needs mix_method=smmix with "
                f"fine_loss_weight > 0; got mix_method={self.mix_method}, fine_loss_weight={self.fine_loss_weight}."
            )
        if not 0.0 <= self.label_smoothing_factor < 1.0:
            raise ValueError(f"label_smoothing_factor must be in [0, 1); got {self.label_smoothing_factor}.")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
