"""The trained churn model: weights, bias, decision threshold and the fitted feature spec, saved
as one self-describing JSON artifact (`format: churn-logreg/v1`).

The serving API reads this JSON without importing the package, so the format is a contract:
change it only together with `platform/images/serving-api/app.py`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churn import features

ARTIFACT_FORMAT = "churn-logreg/v1"


def sigmoid(value: float) -> float:
    # Split by sign so that exp never overflows for large magnitudes.
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exponential = math.exp(value)
    return exponential / (1.0 + exponential)


@dataclass
class Model:
    weights: list[float]
    bias: float
    feature_spec: features.FeatureSpec
    threshold: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.feature_spec):
            raise ValueError(
                f"model has {len(self.weights)} weights for {len(self.feature_spec)} features; "
                "retrain the model"
            )

    def score_vector(self, vector: list[float]) -> float:
        return sigmoid(self.bias + sum(w * x for w, x in zip(self.weights, vector)))

    def predict_proba(self, records: list[dict[str, Any]]) -> list[float]:
        vectors = features.transform(records, self.feature_spec)
        return [self.score_vector(vector) for vector in vectors]

    def predict(self, records: list[dict[str, Any]]) -> list[int]:
        return [1 if p >= self.threshold else 0 for p in self.predict_proba(records)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "weights": self.weights,
            "bias": self.bias,
            "threshold": self.threshold,
            "features": self.feature_spec,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "Model":
        found_format = document.get("format")
        if found_format != ARTIFACT_FORMAT:
            raise ValueError(
                f"model artifact has format `{found_format}`, expected `{ARTIFACT_FORMAT}`; "
                "retrain with this version of the churn package"
            )
        return cls(
            weights=[float(weight) for weight in document["weights"]],
            bias=float(document["bias"]),
            feature_spec=document["features"],
            threshold=float(document.get("threshold", 0.5)),
            metadata=dict(document.get("metadata", {})),
        )

    def save(self, path: Path | str) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return target

    @classmethod
    def load(cls, path: Path | str) -> "Model":
        return cls.from_dict(json.loads(Path(path).read_text()))
