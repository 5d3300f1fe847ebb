"""The training pipeline's steps as functions over files, so that the Airflow DAGs, the trainer
image and a person at a shell all run the same code: preprocess -> train -> evaluate ->
register, and fetch -> score for batch scoring. Each step returns a small JSON-able summary.

Knows file layouts and formats; knows nothing about Airflow or Kubernetes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from churn import data, evaluate, features, registry
from churn.model import Model
from churn.train import TrainingConfig, train

TRAINING_FILE = "train.csv"
HOLDOUT_FILE = "holdout.csv"


def preprocess(
    output_directory: Path | str,
    source_csv: Path | str | None = None,
    rows: int = 2000,
    seed: int = 7,
    holdout_fraction: float = 0.2,
) -> dict[str, Any]:
    """Reads the raw extract (or generates synthetic customers when there is none), checks every
    record, and writes the training and holdout splits."""
    output_directory = Path(output_directory)
    records = data.read_csv(source_csv) if source_csv else data.generate_customers(rows, seed)
    features.validate(records, features.default_feature_definitions())
    features.labels(records)
    training_rows, holdout_rows = data.split_rows(records, holdout_fraction)
    data.write_csv(output_directory / TRAINING_FILE, training_rows)
    data.write_csv(output_directory / HOLDOUT_FILE, holdout_rows)
    return {
        "source": str(source_csv) if source_csv else f"synthetic(rows={rows}, seed={seed})",
        "training_rows": len(training_rows),
        "holdout_rows": len(holdout_rows),
        "output_directory": str(output_directory),
    }


def train_step(
    data_directory: Path | str, model_path: Path | str, config: TrainingConfig = TrainingConfig()
) -> dict[str, Any]:
    records = data.read_csv(Path(data_directory) / TRAINING_FILE)
    model = train(records, config)
    model.save(model_path)
    return {"model_path": str(model_path), **model.metadata}


def evaluate_step(
    model_path: Path | str, data_directory: Path | str, metrics_path: Path | str | None = None
) -> dict[str, Any]:
    model = Model.load(model_path)
    records = data.read_csv(Path(data_directory) / HOLDOUT_FILE)
    measured = evaluate.evaluate(model, records)
    if metrics_path:
        Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_path).write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
    return measured


def register_step(
    model_path: Path | str,
    metrics: dict[str, Any],
    tracking_uri: str,
    model_name: str,
    min_metrics: dict[str, float] | None = None,
    alias: str | None = None,
    tags: dict[str, str] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Registers the model only when it passes the gates; raises `ValueError` naming every miss."""
    failures = evaluate.gate_failures(metrics, min_metrics or {})
    if failures:
        raise ValueError(
            f"model `{model_name}` not registered: " + "; ".join(failures)
            + "; improve the model or change the gates in platform/models/"
        )
    model = Model.load(model_path)
    registered = registry.register_model(
        registry.MlflowClient(tracking_uri, token=token),
        model_path,
        model_name,
        metrics,
        params={key: value for key, value in model.metadata.get("config", {}).items()},
        tags=tags,
        alias=alias,
    )
    return {
        "name": registered.name,
        "version": registered.version,
        "run_id": registered.run_id,
        "source": registered.source,
        "alias": registered.alias,
    }


def fetch_step(
    tracking_uri: str, model_name: str, alias: str, destination: Path | str, token: str | None = None
) -> dict[str, Any]:
    """Downloads the model version an alias points to, so batch scoring uses what serving uses."""
    fetched = registry.fetch_model(registry.MlflowClient(tracking_uri, token=token), model_name, alias, Path(destination))
    Model.load(destination)  # refuse an artifact this package cannot read before anyone scores with it
    return {**fetched, "model_path": str(destination)}


def score_step(model_path: Path | str, input_csv: Path | str, output_csv: Path | str) -> dict[str, Any]:
    """Writes `customer_id,churn_probability,churn_predicted` for every input customer."""
    model = Model.load(model_path)
    records = data.read_csv(input_csv)
    probabilities = model.predict_proba(records)
    scored = [
        {
            "customer_id": record.get("customer_id", str(index + 1)),
            "churn_probability": f"{probability:.6f}",
            "churn_predicted": "1" if probability >= model.threshold else "0",
        }
        for index, (record, probability) in enumerate(zip(records, probabilities))
    ]
    data.write_csv(output_csv, scored)
    predicted = sum(1 for row in scored if row["churn_predicted"] == "1")
    return {"scored_rows": len(scored), "predicted_churners": predicted, "output": str(output_csv)}
