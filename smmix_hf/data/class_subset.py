"""Evaluation restricted to a subset of the model's classes (ImageNet-A / ImageNet-R: 200 of 1000, Tab. 5).

The subset file has one line per evaluation class, in the order of the evaluation labels: line k holds
the model class that evaluation label k stands for, as a class id (``107``) or as a label name of the
model's ``id2label`` (``n01498041`` or ``stingray``). Blank lines and lines starting with ``#`` are
skipped. Evaluation label k is replaced by that model class id, and the top-k predictions are taken
over the subset's logits only, so top-1 / top-5 are accuracies among the subset; ``eval_loss`` stays
the cross-entropy over all of the model's classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

__all__ = ["read_class_subset", "subset_topk_ids"]


def read_class_subset(path: str | Path, label2id: Mapping[str, int], num_labels: int) -> list[int]:
    """The model class id of every evaluation label, read from a subset file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"class subset file {str(path)!r} does not exist; write one model class id or label name per line."
        )
    lines = [line.strip() for line in path.read_text().splitlines()]
    entries = [(number, line) for number, line in enumerate(lines, 1) if line and not line.startswith("#")]
    if not entries:
        raise ValueError(f"class subset file {str(path)!r} lists no class; write one model class per line.")
    ids = []
    for number, entry in entries:
        if entry in label2id:
            ids.append(int(label2id[entry]))
        elif entry.isdigit() and int(entry) < num_labels:
            ids.append(int(entry))
        else:
            raise ValueError(
                f"line {number} of {str(path)!r}: {entry!r} is neither a class id (0..{num_labels - 1}) nor a label "
                "name of the model."
            )
    repeated = sorted({index for index in ids if ids.count(index) > 1})
    if repeated:
        raise ValueError(f"class subset file {str(path)!r} lists model class {repeated[0]} twice; list each once.")
    return ids


def subset_topk_ids(subset: Sequence[int], k: int = 5) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A ``preprocess_logits_for_metrics`` that ranks only the subset's classes and returns model class ids."""
    index = torch.tensor(list(subset), dtype=torch.long)

    def topk(logits: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor) -> torch.Tensor:
        """The ``[N, min(k, len(subset))]`` model class ids of the best subset logits, best first."""
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        ids = index.to(logits.device)
        ranked = logits.index_select(-1, ids).topk(min(k, len(ids)), dim=-1).indices
        return ids[ranked]

    return topk
