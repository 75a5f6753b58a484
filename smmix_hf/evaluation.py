"""Top-1 / top-5 accuracy for ``transformers.Trainer`` through a local ``evaluate`` metric.

The Trainer reports them as ``eval_top1`` and ``eval_top5``, and top-1 once more as ``eval_accuracy``, the name
``run_image_classification.py`` users know.

The metric lives in ``smmix_hf/metrics/topk_accuracy`` and is loaded from that directory, so evaluation
never reaches the network. Logits are reduced to their top-5 class ids on the accelerator
(``preprocess_logits_for_metrics``) so the Trainer gathers ``[N, 5]`` ids rather than ``[N, C]`` logits.
"""

from __future__ import annotations

import functools
import os

import evaluate
import numpy as np
import torch
from transformers import EvalPrediction

__all__ = ["TOPK_METRIC_PATH", "compute_topk_metrics", "load_topk_metric", "preprocess_logits_for_metrics"]

TOPK_METRIC_PATH: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics", "topk_accuracy")


def load_topk_metric() -> evaluate.EvaluationModule:
    """Load the top-k accuracy metric from the package directory; no network access.

    The metric keeps its inputs in memory, so every process of a distributed run can score its gathered
    predictions without sharing cache files.
    """
    script = os.path.join(TOPK_METRIC_PATH, "topk_accuracy.py")
    if not os.path.isfile(script):
        raise ValueError(f"The top-k metric script is missing at {script}; reinstall smmix_hf with its package data.")
    return evaluate.load(TOPK_METRIC_PATH, keep_in_memory=True)


@functools.lru_cache(maxsize=1)
def _cached_topk_metric() -> evaluate.EvaluationModule:
    """Load the metric once per process."""
    return load_topk_metric()


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
    labels = np.asarray(eval_prediction.label_ids).reshape(-1)
    result = _cached_topk_metric().compute(predictions=ids, references=labels)
    top1 = float(result["top1"])
    return {"top1": top1, "top5": float(result["top5"]), "accuracy": top1}
