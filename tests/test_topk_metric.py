"""The top-k accuracy metric and its Trainer hooks, against scikit-learn's top_k_accuracy_score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import top_k_accuracy_score
from transformers import EvalPrediction

from smmix_hf.evaluation import compute_topk_metrics, preprocess_logits_for_metrics, topk_accuracy


def test_topk_accuracy_equals_scikit_learn_top_k_accuracy_score() -> None:
    """Against scikit-learn's own top_k_accuracy_score on the full score matrix, k = 1 and 5."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 12))
    labels = rng.integers(0, 12, size=200)
    ids = preprocess_logits_for_metrics(torch.tensor(scores), torch.tensor(labels)).numpy()
    for k in (1, 5):
        expected = top_k_accuracy_score(labels, scores, k=k, labels=np.arange(12))
        assert topk_accuracy(ids, labels, k) == pytest.approx(expected)


def test_known_predictions_with_fewer_ids_than_k() -> None:
    predictions = np.array([[1, 2], [2, 0], [0, 1], [1, 0], [2, 1]])
    labels = np.array([1, 0, 2, 1, 0])
    assert topk_accuracy(predictions, labels, 1) == pytest.approx(2 / 5)
    assert topk_accuracy(predictions, labels, 5) == pytest.approx(3 / 5)


def test_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[N, k\]"):
        topk_accuracy(np.array([[0, 1]]), np.array([0, 1]), 1)


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
