"""The local top-k accuracy metric and its Trainer hooks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from smmix_hf.evaluation import (
    TOPK_METRIC_PATH,
    compute_topk_metrics,
    load_topk_metric,
    preprocess_logits_for_metrics,
)


@pytest.fixture(scope="module")
def metric():
    """The metric loaded from its package directory."""
    return load_topk_metric()


def test_metric_path_points_at_module_directory() -> None:
    assert os.path.isabs(TOPK_METRIC_PATH)
    assert os.path.isfile(os.path.join(TOPK_METRIC_PATH, "topk_accuracy.py"))


def test_known_predictions_with_k_above_five(metric) -> None:
    predictions = [
        [3, 1, 2, 0, 4, 5, 6],  # top-1 hit
        [0, 1, 2, 3, 4, 5, 6],  # reference 4 at rank 5: top-5 hit
        [0, 1, 2, 3, 4, 5, 6],  # reference 5 at rank 6: miss
        [9, 8, 7, 6, 5, 4, 3],  # reference 8 at rank 2: top-5 hit
    ]
    result = metric.compute(predictions=predictions, references=[3, 4, 5, 8])
    assert result == {"top1": 0.25, "top5": 0.75}


def test_known_predictions_with_k_below_five(metric) -> None:
    predictions = np.array([[1, 2], [2, 0], [0, 1], [1, 0], [2, 1]])
    result = metric.compute(predictions=predictions, references=np.array([1, 0, 2, 1, 0]))
    assert result["top1"] == pytest.approx(2 / 5)
    assert result["top5"] == pytest.approx(3 / 5)


def test_k_equal_one_gives_equal_top1_and_top5(metric) -> None:
    result = metric.compute(predictions=[[0], [1], [2]], references=[0, 1, 1])
    assert result["top1"] == pytest.approx(2 / 3)
    assert result["top5"] == pytest.approx(2 / 3)


def test_added_batches_accumulate(metric) -> None:
    metric.add_batch(predictions=[[0, 1]], references=[1])
    metric.add_batch(predictions=[[2, 3]], references=[2])
    assert metric.compute() == {"top1": 0.5, "top5": 1.0}


def test_ragged_predictions_are_rejected(metric) -> None:
    with pytest.raises(ValueError, match="same number k"):
        metric.compute(predictions=[[0, 1], [2]], references=[0, 2])


def test_preprocess_logits_returns_sorted_top_ids() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.3, 0.5, 0.0, 0.2, 0.8], [1.0, 0.0, 2.0, 3.0, -1.0, 4.0, 5.0]])
    ids = preprocess_logits_for_metrics(logits, torch.tensor([1, 6]))
    assert ids.shape == (2, 5)
    assert ids.dtype == torch.int64
    assert ids.tolist() == [[1, 6, 3, 2, 5], [6, 5, 3, 2, 0]]


def test_preprocess_logits_with_few_classes_and_tuple_output() -> None:
    logits = torch.tensor([[0.2, 0.7, 0.1], [0.5, 0.2, 0.3]])
    ids = preprocess_logits_for_metrics((logits, torch.zeros(2, 4)), torch.tensor([1, 0]))
    assert ids.shape == (2, 3)
    assert ids.tolist() == [[1, 0, 2], [0, 2, 1]]


def test_compute_topk_metrics_through_eval_prediction() -> None:
    torch.manual_seed(0)
    logits = torch.randn(32, 10)
    labels = torch.randint(0, 10, (32,))
    ids = preprocess_logits_for_metrics(logits, labels).numpy()
    result = compute_topk_metrics(EvalPrediction(predictions=ids, label_ids=labels.numpy()))
    expected_top1 = (logits.argmax(-1) == labels).float().mean().item()
    expected_top5 = (logits.topk(5, dim=-1).indices == labels[:, None]).any(-1).float().mean().item()
    assert set(result) == {"top1", "top5", "accuracy"}
    assert result["accuracy"] == result["top1"]
    assert all(isinstance(value, float) for value in result.values())
    assert result["top1"] == pytest.approx(expected_top1)
    assert result["top5"] == pytest.approx(expected_top5)


def test_compute_topk_metrics_rejects_raw_logits() -> None:
    prediction = EvalPrediction(predictions=np.random.rand(4, 10).astype(np.float32), label_ids=np.arange(4))
    with pytest.raises(ValueError, match="preprocess_logits_for_metrics"):
        compute_topk_metrics(prediction)
