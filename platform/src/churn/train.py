"""A small logistic-regression trainer: full-batch gradient descent with L2 regularisation,
deterministic for the same data and configuration.

Pure: takes records in memory and returns a `Model`; reading and writing files is `pipeline`'s job.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from churn import features
from churn.model import Model, sigmoid


@dataclass(frozen=True)
class TrainingConfig:
    learning_rate: float = 0.5
    epochs: int = 300
    l2: float = 0.001
    threshold: float = 0.5

    def problems(self) -> list[str]:
        problems = []
        if self.learning_rate <= 0:
            problems.append(f"learning_rate is {self.learning_rate}; use a positive number")
        if self.epochs < 1:
            problems.append(f"epochs is {self.epochs}; use at least 1")
        if self.l2 < 0:
            problems.append(f"l2 is {self.l2}; use 0 or more")
        if not 0.0 < self.threshold < 1.0:
            problems.append(f"threshold is {self.threshold}; use a value between 0 and 1")
        return problems


def fit_logistic_regression(
    vectors: list[list[float]], labels: list[int], config: TrainingConfig
) -> tuple[list[float], float, list[float]]:
    """Returns (weights, bias, log-loss after every epoch)."""
    if len(vectors) != len(labels):
        raise ValueError(f"{len(vectors)} feature vectors but {len(labels)} labels")
    if not vectors:
        raise ValueError("no training rows; check the preprocessing output")
    row_count = len(vectors)
    feature_count = len(vectors[0])
    weights = [0.0] * feature_count
    bias = 0.0
    loss_history = []
    for _ in range(config.epochs):
        weight_gradient = [0.0] * feature_count
        bias_gradient = 0.0
        loss = 0.0
        for vector, label in zip(vectors, labels):
            probability = sigmoid(bias + sum(w * x for w, x in zip(weights, vector)))
            error = probability - label
            for index, value in enumerate(vector):
                weight_gradient[index] += error * value
            bias_gradient += error
            clipped = min(max(probability, 1e-12), 1 - 1e-12)
            loss -= label * math.log(clipped) + (1 - label) * math.log(1 - clipped)
        for index in range(feature_count):
            gradient = weight_gradient[index] / row_count + config.l2 * weights[index]
            weights[index] -= config.learning_rate * gradient
        bias -= config.learning_rate * bias_gradient / row_count
        loss_history.append(loss / row_count)
    return weights, bias, loss_history


def train(
    records: list[dict[str, Any]],
    config: TrainingConfig = TrainingConfig(),
    label_column: str = "churned",
) -> Model:
    problems = config.problems()
    if problems:
        raise ValueError("invalid training configuration: " + "; ".join(problems))
    spec = features.fit(records)
    vectors = features.transform(records, spec)
    labels = features.labels(records, label_column)
    weights, bias, loss_history = fit_logistic_regression(vectors, labels, config)
    return Model(
        weights=[round(weight, 8) for weight in weights],
        bias=round(bias, 8),
        feature_spec=spec,
        threshold=config.threshold,
        metadata={
            "training_rows": len(records),
            "positive_rate": round(sum(labels) / len(labels), 6),
            "final_log_loss": round(loss_history[-1], 6),
            "config": asdict(config),
        },
    )
