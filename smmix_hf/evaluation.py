"""Top-1 / top-5 accuracy for ``transformers.Trainer``, in numpy.

The Trainer reports them as ``eval_top1`` and ``eval_top5``, and top-1 once more as ``eval_accuracy``, the
name ``run_image_classification.py`` users know. Logits are reduced to their top-5 class ids on the
accelerator (``preprocess_logits_for_metrics``), so the Trainer gathers ``[N, 5]`` ids rather than
``[N, C]`` logits.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import EvalPrediction

__all__ = ["compute_topk_metrics", "preprocess_logits_for_metrics", "topk_accuracy"]


def preprocess_logits_for_metrics(
    logits: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor
) -> torch.Tensor:
    """Reduce ``[N, C]`` logits to the ``[N, min(5, C)]`` class ids of the highest scores, best first."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    if logits.ndim != 2:
        raise ValueError(
            f"Expected logits of shape [batch, num_classes], got {tuple(logits.shape)}; pass classifier logits."
        )
    return logits.topk(min(5, logits.shape[-1]), dim=-1).indices


def topk_accuracy(top_ids: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose label is among their first ``k`` ids (all of them when fewer than ``k``)."""
    top_ids, labels = np.asarray(top_ids), np.asarray(labels).reshape(-1)
    if top_ids.ndim != 2 or top_ids.shape[0] != labels.shape[0]:
        raise ValueError(f"top-k ids must be [N, k] with N = {labels.shape[0]} labels; got shape {top_ids.shape}.")
    if labels.size == 0:
        raise ValueError("no predictions to score.")
    return float((top_ids[:, :k] == labels[:, None]).any(axis=1).mean())


def compute_topk_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """Score the ``[N, k]`` top-k ids in ``eval_prediction.predictions`` against its ``label_ids``.

    Returns ``top1``, ``top5`` and ``accuracy`` (= ``top1``).
    """
    predictions = eval_prediction.predictions
    if isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    ids = np.asarray(predictions)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"Expected integer top-k ids of shape [N, k], got {ids.dtype} array of shape {ids.shape}; "
            "pass preprocess_logits_for_metrics to the Trainer."
        )
    labels = np.asarray(eval_prediction.label_ids)
    top1 = topk_accuracy(ids, labels, 1)
    return {"top1": top1, "top5": topk_accuracy(ids, labels, 5), "accuracy": top1}
