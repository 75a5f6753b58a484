"""Mixing methods behind one interface (:class:`MixMethod`), and the registry of their names.

This registry is the only place where method names appear (besides the configuration's choices, which
it supplies): everything else asks the method object. Adding a method means writing one module and adding
one line to :data:`_METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable

from smmix_hf.draws import MixRandom
from smmix_hf.methods.base import LabelReweighting, MixDraw, Mixed, MixMethod, MixSettings, RunPosition
from smmix_hf.methods.cutmix import CutMix
from smmix_hf.methods.mixup import Mixup
from smmix_hf.methods.none import NoMix
from smmix_hf.methods.smmix import SMMix
from smmix_hf.methods.switch import MixSwitch
from smmix_hf.methods.transmix import TransMix

__all__ = [
    "ANALYSIS_METHODS",
    "LABEL_REWEIGHTINGS",
    "MIX_METHODS",
    "LabelReweighting",
    "MixDraw",
    "MixMethod",
    "MixSettings",
    "MixSwitch",
    "Mixed",
    "RunPosition",
    "build_analysis_method",
    "build_mix_method",
]

Factory = Callable[[str, MixSettings, MixRandom, LabelReweighting | None], MixMethod]

_METHODS: dict[str, Factory] = {
    "smmix": SMMix,
    "cutmix": CutMix,
    "mixup": Mixup,
    "none": NoMix,
    "transmix": lambda name, settings, random, _: CutMix(name, settings, random, TransMix(name)),
}
_REWEIGHTINGS: dict[str, Callable[[str], LabelReweighting] | None] = {"none": None, "transmix": TransMix}
_SWITCH_TO = {"smmix": "mixup", "cutmix": "mixup", "transmix": "mixup"}  # taken with p = 1 - mixup_switch_prob
_UNMIXED = "none"

MIX_METHODS = tuple(_METHODS)
LABEL_REWEIGHTINGS = tuple(_REWEIGHTINGS)
ANALYSIS_METHODS = ("smmix", "cutmix")
"""The methods the analysis tools mix evaluation images with (Fig. 5a; the PNG grids)."""


def _check_name(kind: str, name: str, choices: tuple[str, ...]) -> None:
    if name not in choices:
        raise ValueError(f"{kind} must be one of {', '.join(choices)}; got {name!r}.")


def _build(name: str, settings: MixSettings, random: MixRandom, reweighting: str = _UNMIXED) -> MixMethod:
    make_reweighting = _REWEIGHTINGS[reweighting]
    return _METHODS[name](name, settings, random, make_reweighting(reweighting) if make_reweighting else None)


def build_mix_method(settings: MixSettings, seed: int) -> MixSwitch:
    """The training method of ``settings``: the DeiT switch around ``settings.mix_method``, seeded with ``seed``."""
    _check_name("mix_method", settings.mix_method, MIX_METHODS)
    _check_name("label_reweighting", settings.label_reweighting, LABEL_REWEIGHTINGS)
    random = MixRandom(seed)
    primary = _build(settings.mix_method, settings, random, settings.label_reweighting)
    alternative = _SWITCH_TO.get(settings.mix_method)
    return MixSwitch(
        settings.mix_method,
        settings,
        random,
        primary=primary,
        alternative=None if alternative is None else _build(alternative, settings, random),
        unmixed=_build(_UNMIXED, settings, random),
    )


def build_analysis_method(
    name: str, *, region_scale: tuple[float, float] = (0.25, 0.75), cutmix_alpha: float = 1.0, seed: int = 0
) -> MixMethod:
    """One of :data:`ANALYSIS_METHODS`, as training draws it but without Mixup batches in between."""
    _check_name("method", name, ANALYSIS_METHODS)
    low, high = region_scale
    settings = MixSettings(mix_method=name, region_scale_min=low, region_scale_max=high, cutmix_alpha=cutmix_alpha)
    return _build(name, settings, MixRandom(seed))
