"""Evaluation: confusion counts, accuracy, precision, recall and F1 of binary predictions, and the
promotion gates (`min_metrics`) that the model pins in `platform/models/` declare.

Pure: numbers in, numbers out.
"""

from __future__ import annotations

from typing import Any

from churn.model import Model
from churn import features

METRIC_NAMES = ("accuracy", "precision", "recall", "f1_score")


def confusion(labels: list[int], predictions: list[int]) -> dict[str, int]:
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    counts = {"true_positive": 0, "false_positive": 0, "true_negative": 0, "false_negative": 0}
    for label, prediction in zip(labels, predictions):
        if prediction == 1:
            counts["true_positive" if label == 1 else "false_positive"] += 1
        else:
            counts["true_negative" if label == 0 else "false_negative"] += 1
    return counts


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def metrics(labels: list[int], predictions: list[int]) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (named `f1_score`, as MLflow users log it).

    Precision, recall and F1 are 0.0 when undefined (no positive predictions or labels).
    """
    if not labels:
        raise ValueError("no labels to evaluate against; check the holdout data")
    counts = confusion(labels, predictions)
    true_positive = counts["true_positive"]
    precision = _ratio(true_positive, true_positive + counts["false_positive"])
    recall = _ratio(true_positive, true_positive + counts["false_negative"])
    f1_score = _ratio(2 * true_positive, 2 * true_positive + counts["false_positive"] + counts["false_negative"])
    return {
        "accuracy": _ratio(true_positive + counts["true_negative"], len(labels)),
        "precision": precision,
        "recall": recall,
        "f1_score": f1_score,
    }


def evaluate(model: Model, records: list[dict[str, Any]], label_column: str = "churned") -> dict[str, Any]:
    labels = features.labels(records, label_column)
    predictions = model.predict(records)
    result: dict[str, Any] = {name: round(value, 6) for name, value in metrics(labels, predictions).items()}
    result["rows"] = len(records)
    result.update(confusion(labels, predictions))
    return result


def gate_failures(measured: dict[str, Any], min_metrics: dict[str, float]) -> list[str]:
    """Every `min_metrics` gate the measured metrics miss, as messages; empty when all pass."""
    failures = []
    for name, minimum in sorted(min_metrics.items()):
        if name not in measured:
            failures.append(f"metric `{name}` was not measured; gates can use {', '.join(METRIC_NAMES)}")
        elif float(measured[name]) < float(minimum):
            failures.append(f"metric `{name}` is {float(measured[name]):.4f}, below the gate {float(minimum):.4f}")
    return failures
