"""Markdown tables and labels for the reports."""

from __future__ import annotations

from collections.abc import Sequence

# The paper's Tab. 7 rows as variants, and its ImageNet DeiT-S top-1 for each.
TAB7 = ["cutmix", "maxmin_only", "maxmin_con", "maxmin_fine", "smmix"]
PAPER_TAB7 = {"cutmix": "79.8", "maxmin_only": "80.4", "maxmin_con": "–", "maxmin_fine": "80.9", "smmix": "81.1"}

LABELS = {
    "none": "no mixing",
    "cutmix": "CutMix",
    "smmix": "SMMix",
    "maxmin_only": "max-min only",
    "maxmin_con": "max-min + L_con",
    "maxmin_fine": "max-min + L_fine",
    "random_windows": "SMMix, random windows",
    "smmix_ink_oracle": "SMMix, ink-oracle windows",
    "smmix_warmup25": "SMMix + random-window warm-up",
    "smmix_warmup25_cutmix": "SMMix + CutMix warm-up",
    "smmix_warmup25_cutmix_random": "SMMix + two-part warm-up (the default)",
    "smmix_probs": "SMMix, L_con target = λ-mix of probabilities",
    "smmix_region_head": "SMMix, separate linear region head",
    "delta_u01": "SMMix, δ ~ U(0, 1) (Tab. 8)",
    "delta_half": "SMMix, δ = 0.5 (Tab. 8)",
}


def label(variant: str, warmup: str = "none") -> str:
    name = LABELS.get(variant, variant)
    return name if warmup == "none" else f"{name} + warm-up {warmup}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table, one line per row, cells as given."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def figure(name: str, caption: str) -> list[str]:
    """An image line for a figure under ``docs/images/evidence/`` (the page lives in ``docs/``)."""
    return [f"![{caption}](images/evidence/{name})", ""]
