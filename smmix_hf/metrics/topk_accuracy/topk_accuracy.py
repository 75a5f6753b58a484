"""Top-1 and top-5 accuracy from each sample's top-k predicted class ids."""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Top-1 and top-5 classification accuracy. Each prediction is the list of the k best class ids of one
sample, best first (k >= 1, the same k for every sample). Top-1 is the share of samples whose first id
is the reference label; top-5 is the share whose reference label is among the first min(5, k) ids.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): the top-k predicted class ids of each sample, best first.
    references (`list` of `int`): the true class id of each sample.
Returns:
    top1 (`float`): share of samples whose best prediction is the reference, in [0, 1].
    top5 (`float`): share of samples whose reference is among the first min(5, k) predictions, in [0, 1].
Examples:
    >>> metric = evaluate.load("smmix_hf/metrics/topk_accuracy")
    >>> metric.compute(predictions=[[3, 1], [0, 2]], references=[3, 2])
    {'top1': 0.5, 'top5': 1.0}
"""

_CITATION = ""


def _as_id_matrix(predictions: Any) -> np.ndarray:
    """Stack the per-sample id lists into an int64 array of shape [N, k], checking that k is shared."""
    rows = [np.asarray(row, dtype=np.int64).reshape(-1) for row in predictions]
    widths = {row.shape[0] for row in rows}
    if len(widths) != 1:
        raise ValueError(
            f"Every prediction must list the same number k of class ids, got lengths {sorted(widths)}; "
            "pass the top-k ids of every sample with one k."
        )
    width = widths.pop()
    if width < 1:
        raise ValueError("Each prediction must list at least one class id (k >= 1); pass the top-k ids, best first.")
    return np.stack(rows)


class TopkAccuracy(evaluate.Metric):
    """Top-1 / top-5 accuracy computed from precomputed top-k class ids."""

    def _info(self) -> evaluate.MetricInfo:
        """Describe the metric and its input features."""
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Value("int64"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2212.12977"],
        )

    def _compute(self, predictions: Any, references: Any) -> dict[str, float]:
        """Return ``{"top1": ..., "top5": ...}`` for the accumulated predictions and references."""
        labels = np.asarray(references, dtype=np.int64).reshape(-1)
        if labels.shape[0] == 0:
            raise ValueError("No predictions to score; add at least one prediction/reference pair.")
        ids = _as_id_matrix(predictions)
        if ids.shape[0] != labels.shape[0]:
            raise ValueError(
                f"Got {ids.shape[0]} predictions but {labels.shape[0]} references; pass one reference per prediction."
            )
        top1 = ids[:, 0] == labels
        top5 = (ids[:, : min(5, ids.shape[1])] == labels[:, None]).any(axis=1)
        return {"top1": float(top1.mean()), "top5": float(top5.mean())}
