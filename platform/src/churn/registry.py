"""Registers a trained model with an MLflow tracking server over its REST API, using only
`urllib`: one run that carries the metrics, parameters and the model artifact, a registered
model, a new model version and, optionally, an alias pointing at it.

The tracking URI always comes from the caller (an Airflow Variable in the DAGs, an environment
variable in images); nothing here defaults to a local server. Credentials, if any, are sent as
a bearer token and never appear in errors.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPERIMENT_NAME = "churn-classifier"
ARTIFACT_DIRECTORY = "model"


class RegistryError(RuntimeError):
    """An MLflow call failed; the message names the endpoint and MLflow's error code."""


@dataclass
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    source: str
    alias: str | None


class MlflowClient:
    def __init__(self, tracking_uri: str, token: str | None = None, timeout_seconds: float = 30.0):
        if not tracking_uri.startswith(("http://", "https://")):
            raise RegistryError(
                f"tracking URI `{tracking_uri}` is not http(s); set the Airflow Variable "
                "`mlflow_tracking_uri` (or MLFLOW_TRACKING_URI) to the MLflow server's URL"
            )
        self.tracking_uri = tracking_uri.rstrip("/")
        self.token = token
        self.timeout_seconds = timeout_seconds

    def _request(self, method: str, url: str, body: bytes | None, content_type: str) -> bytes:
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            payload = error.read().decode("utf-8", "replace")
            try:
                details = json.loads(payload)
            except ValueError:
                details = {"message": payload[:200]}
            raise RegistryError(
                f"mlflow {method} {urllib.parse.urlsplit(url).path} answered {error.code} "
                f"{details.get('error_code', '')}: {details.get('message', '')}".rstrip()
            ) from None
        except urllib.error.URLError as error:
            raise RegistryError(
                f"mlflow at {self.tracking_uri} is unreachable ({error.reason}); "
                "check the tracking URI and that the server runs"
            ) from None

    def call(self, method: str, endpoint: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.tracking_uri}/api/2.0/mlflow/{endpoint}"
        if method == "GET" and payload:
            url += "?" + urllib.parse.urlencode(payload)
            body = None
        else:
            body = json.dumps(payload or {}).encode()
        answer = self._request(method, url, body, "application/json")
        return json.loads(answer) if answer.strip() else {}

    def experiment_id(self, name: str) -> str:
        try:
            found = self.call("GET", "experiments/get-by-name", {"experiment_name": name})
            return found["experiment"]["experiment_id"]
        except RegistryError as error:
            if "RESOURCE_DOES_NOT_EXIST" not in str(error):
                raise
        return self.call("POST", "experiments/create", {"name": name})["experiment_id"]

    def upload_artifact(self, artifact_uri: str, local_path: Path, relative_path: str) -> None:
        """Stores a file under the run's artifact root: through the server's artifact proxy for
        `mlflow-artifacts:` roots, by copying for local roots."""
        if artifact_uri.startswith("mlflow-artifacts:"):
            artifact_path = artifact_uri.split(":", 1)[1].lstrip("/")
            url = f"{self.tracking_uri}/api/2.0/mlflow-artifacts/artifacts/{artifact_path}/{relative_path}"
            self._request("PUT", url, local_path.read_bytes(), "application/octet-stream")
            return
        local_root = artifact_uri[len("file://"):] if artifact_uri.startswith("file://") else artifact_uri
        if local_root.startswith("/"):
            destination = Path(local_root) / relative_path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local_path, destination)
            return
        raise RegistryError(
            f"artifact root `{artifact_uri}` is neither mlflow-artifacts: nor local; "
            "start the MLflow server with --serve-artifacts"
        )


    def version_by_alias(self, model_name: str, alias: str) -> dict[str, Any]:
        """The model version an alias points to (`models:/NAME@ALIAS`)."""
        return self.call("GET", "registered-models/alias", {"name": model_name, "alias": alias})["model_version"]

    def download_artifact(self, source: str, relative_path: str, destination: Path) -> Path:
        """Fetches one file of a model version's artifacts: through the artifact proxy for
        `mlflow-artifacts:` sources, by copying for local ones."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.startswith("mlflow-artifacts:"):
            artifact_path = source.split(":", 1)[1].lstrip("/")
            url = f"{self.tracking_uri}/api/2.0/mlflow-artifacts/artifacts/{artifact_path}/{relative_path}"
            destination.write_bytes(self._request("GET", url, None, "application/octet-stream"))
            return destination
        local_root = source[len("file://"):] if source.startswith("file://") else source
        if local_root.startswith("/"):
            shutil.copyfile(Path(local_root) / relative_path, destination)
            return destination
        raise RegistryError(
            f"model source `{source}` is neither mlflow-artifacts: nor local; "
            "start the MLflow server with --serve-artifacts"
        )


def fetch_model(client: MlflowClient, model_name: str, alias: str, destination: Path | str) -> dict[str, Any]:
    """Downloads the model file the alias points to; returns the version's name, version and source."""
    version = client.version_by_alias(model_name, alias)
    client.download_artifact(version["source"], "model.json", Path(destination))
    return {"name": model_name, "alias": alias, "version": str(version["version"]), "source": version["source"]}


def register_model(
    client: MlflowClient,
    model_path: Path | str,
    model_name: str,
    metrics: dict[str, Any],
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    alias: str | None = None,
) -> RegisteredVersion:
    model_path = Path(model_path)
    now_ms = int(time.time() * 1000)
    experiment_id = client.experiment_id(EXPERIMENT_NAME)
    run_tags = [{"key": key, "value": str(value)} for key, value in sorted((tags or {}).items())]
    run = client.call(
        "POST",
        "runs/create",
        {"experiment_id": experiment_id, "start_time": now_ms, "run_name": f"{model_name}-train", "tags": run_tags},
    )["run"]
    run_id = run["info"]["run_id"]
    artifact_uri = run["info"]["artifact_uri"]
    numeric_metrics = [
        {"key": key, "value": float(value), "timestamp": now_ms, "step": 0}
        for key, value in sorted(metrics.items())
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    client.call(
        "POST",
        "runs/log-batch",
        {
            "run_id": run_id,
            "metrics": numeric_metrics,
            "params": [{"key": key, "value": str(value)} for key, value in sorted((params or {}).items())],
        },
    )
    client.upload_artifact(artifact_uri, model_path, f"{ARTIFACT_DIRECTORY}/{model_path.name}")
    client.call("POST", "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})
    try:
        client.call("POST", "registered-models/create", {"name": model_name})
    except RegistryError as error:
        if "RESOURCE_ALREADY_EXISTS" not in str(error):
            raise
    source = f"{artifact_uri.rstrip('/')}/{ARTIFACT_DIRECTORY}"
    version = client.call(
        "POST",
        "model-versions/create",
        {"name": model_name, "source": source, "run_id": run_id, "tags": run_tags},
    )["model_version"]["version"]
    if alias:
        client.call("POST", "registered-models/alias", {"name": model_name, "alias": alias, "version": str(version)})
    return RegisteredVersion(name=model_name, version=str(version), run_id=run_id, source=source, alias=alias)
