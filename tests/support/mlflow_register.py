"""Registers model versions on an MLflow tracking server for the MLflow target's tests, each
backed by a real run with real metrics, through the MLflow Python client.

Usage: python mlflow_register.py TRACKING_URI SPEC_JSON
SPEC_JSON: {"model": "churn", "versions": [{"metrics": {"accuracy": 0.8}, "tags": {"git_sha": "abc"}}]}
Prints one JSON line: {"versions": ["1", "2"]}, the registered version numbers in order.
"""

import json
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def main() -> None:
    tracking_uri, spec_text = sys.argv[1], sys.argv[2]
    spec = json.loads(spec_text)
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    model = spec["model"]
    try:
        client.create_registered_model(model)
    except MlflowException as error:
        if "RESOURCE_ALREADY_EXISTS" not in str(error):
            raise
    experiment_id = mlflow.set_experiment(f"sluice-tests-{model}").experiment_id
    registered = []
    for version_spec in spec["versions"]:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_metrics(version_spec.get("metrics", {}))
            with tempfile.TemporaryDirectory() as directory:
                model_file = Path(directory) / "model.txt"
                model_file.write_text(json.dumps(version_spec.get("metrics", {})))
                mlflow.log_artifact(str(model_file), artifact_path="model")
            source = f"{run.info.artifact_uri}/model"
        version = client.create_model_version(
            model, source, run_id=run.info.run_id, tags=version_spec.get("tags", {})
        )
        registered.append(str(version.version))
    print(json.dumps({"versions": registered}))


if __name__ == "__main__":
    main()
