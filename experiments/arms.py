"""The arms of the studies: named SMMix variants and warm-up specs, as :class:`smmix_hf.SMMixConfig` settings.

An arm is a ``(variant, warmup)`` pair. :data:`VARIANTS` maps a variant to ``SMMixConfig`` overrides (and, for
``smmix_ink_oracle``, to the window scorer of :mod:`experiments.ink_oracle`, which
:func:`experiments.runner.arm_trainer` sets on the task). A warm-up spec is ``none`` or
``<knobs>:<length>``, which the early studies used to ask for the motivation warm-up before the package had it;
:func:`warmup_settings` maps each onto the package's own settings:

* ``rand+nocon:<E>`` (random windows and no L_con until epoch E) is ``motivation_warmup_epochs=E`` with
  ``motivation_warmup_mixing="random_windows"``; ``rand+nocon:<P>%`` is the same for P% of the epochs;
* ``nocon:<E>`` (no L_con until epoch E, max-min windows from the start) has no package setting: its runs are
  stored results, and asking to train one is an error.

The variants ``smmix_warmup25*`` are the package's warm-up over the first 25% of the epochs in its three forms.
Every other SMMix arm trains with the paper's schedule (``motivation_warmup_ratio=0``).
"""

from __future__ import annotations

from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "none": {"mix_method": "none"},
    "cutmix": {"mix_method": "cutmix"},
    "smmix": {"mix_method": "smmix"},
    # Tab. 7 rows
    "maxmin_only": {"mix_method": "smmix", "fine_loss_weight": 0.0, "consistency_loss_weight": 0.0},
    "maxmin_con": {"mix_method": "smmix", "fine_loss_weight": 0.0},
    "maxmin_fine": {"mix_method": "smmix", "consistency_loss_weight": 0.0},
    "random_windows": {"mix_method": "smmix", "max_min_regions": False},
    # the motivation warm-up over the first 25% of the epochs: random windows, CutMix, CutMix then random windows
    "smmix_warmup25": {"mix_method": "smmix", "warmup_share": 0.25, "motivation_warmup_mixing": "random_windows"},
    "smmix_warmup25_cutmix": {"mix_method": "smmix", "warmup_share": 0.25, "motivation_warmup_mixing": "cutmix"},
    "smmix_warmup25_cutmix_random": {
        "mix_method": "smmix",
        "warmup_share": 0.25,
        "motivation_warmup_mixing": "cutmix_then_random_windows",
    },
    # design choices: L_con's target, the region head, Tab. 8's window side ratio δ
    "smmix_probs": {"mix_method": "smmix", "consistency_target": "probs"},
    "smmix_region_head": {"mix_method": "smmix", "region_head": "separate"},
    "delta_u01": {"mix_method": "smmix", "region_scale_min": 0.0, "region_scale_max": 1.0},
    "delta_half": {"mix_method": "smmix", "region_scale_min": 0.5, "region_scale_max": 0.5},
    # windows scored by the digit's ink instead of the model's attention
    "smmix_ink_oracle": {"mix_method": "smmix", "scorer": "ink_oracle"},
}


def warmup_settings(spec: str, epochs: int) -> dict[str, Any]:
    """The package settings of a warm-up spec (see the module docstring); ``{}`` for ``none``."""
    if spec == "none":
        return {}
    knobs, _, length = spec.partition(":")
    if set(knobs.split("+")) != {"rand", "nocon"} or not length:
        raise ValueError(f"warm-up {spec!r} has no SMMixConfig equivalent (only rand+nocon:<epochs>[%] has).")
    share = float(length[:-1]) / 100 * epochs if length.endswith("%") else float(length)
    return {"motivation_warmup_epochs": share, "motivation_warmup_mixing": "random_windows"}


def arm_settings(variant: str, warmup: str, epochs: int) -> tuple[dict[str, Any], str]:
    """``SMMixConfig`` overrides of an arm at an epoch budget, and what places its windows (``attention``, the
    model's own, or ``ink_oracle``)."""
    overrides = dict(VARIANTS[variant])
    scorer = overrides.pop("scorer", "attention")
    share = overrides.pop("warmup_share", None)
    if share is not None:
        overrides["motivation_warmup_epochs"] = share * epochs
    overrides.update(warmup_settings(warmup, epochs))
    if "motivation_warmup_epochs" not in overrides:
        overrides["motivation_warmup_ratio"] = 0.0
    return overrides, scorer


def arm_label(variant: str, warmup: str) -> str:
    return variant if warmup == "none" else f"{variant} + warm-up {warmup}"
