"""serving-api: a small HTTP server that answers churn predictions from a model artifact.

Standard library only. The artifact (`format: churn-logreg/v1`, written by the `churn` package)
carries its own feature specification, so this file applies exactly the trainer's preprocessing
without importing the trainer's code.

Endpoints:
  GET  /health   200 with the loaded model, or 503 while no usable model is loaded
  POST /predict  {"customers": [{...}, ...]} or one customer object ->
                 {"predictions": [{"customer_id", "churn_probability", "churn_predicted"}], "model": {...}}

Environment: MODEL_PATH (default /models/churn-classifier/model.json), MODEL_NAME, MODEL_VERSION,
MODEL_ALIAS (reported as given), HOST (default 0.0.0.0), PORT (default 8080). The model is read
once at start; after the registry alias moves, a rolling restart of the Deployment loads the new one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ARTIFACT_FORMAT = "churn-logreg/v1"
MAX_BODY_BYTES = 1_000_000
TRUE_WORDS = ("yes", "true", "1")
FALSE_WORDS = ("no", "false", "0")


class LoadedModel:
    def __init__(self, document: dict, identity: dict):
        if document.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"model format is `{document.get('format')}`, expected `{ARTIFACT_FORMAT}`")
        self.weights = [float(weight) for weight in document["weights"]]
        self.bias = float(document["bias"])
        self.threshold = float(document.get("threshold", 0.5))
        self.features = document["features"]
        if len(self.weights) != len(self.features):
            raise ValueError(f"model has {len(self.weights)} weights for {len(self.features)} features")
        self.identity = identity

    def _number(self, customer: dict, column: str, problems: list[str], label: str) -> float:
        value = customer.get(column)
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(f"{label}: `{column}` is {json.dumps(value)}, expected a number")
            return 0.0
        if math.isnan(number) or math.isinf(number):
            problems.append(f"{label}: `{column}` is {json.dumps(value)}, expected a finite number")
            return 0.0
        return number

    def vector(self, customer: dict, label: str, problems: list[str]) -> list[float]:
        values = []
        for feature in self.features:
            kind = feature["kind"]
            if kind == "numeric":
                raw = self._number(customer, feature["column"], problems, label)
                values.append((raw - feature["mean"]) / feature["std"])
            elif kind == "ratio":
                numerator = self._number(customer, feature["numerator"], problems, label)
                denominator = self._number(customer, feature["denominator"], problems, label)
                values.append((numerator / max(denominator, 1.0) - feature["mean"]) / feature["std"])
            elif kind == "one_hot":
                values.append(1.0 if str(customer.get(feature["column"])) == feature["value"] else 0.0)
            elif kind == "flag":
                text = str(customer.get(feature["column"], "")).strip().lower()
                if text not in TRUE_WORDS + FALSE_WORDS:
                    problems.append(f"{label}: `{feature['column']}` is {json.dumps(customer.get(feature['column']))}, expected yes or no")
                values.append(1.0 if text in TRUE_WORDS else 0.0)
            else:
                raise ValueError(f"model feature `{feature.get('name')}` has unknown kind `{kind}`")
        known_values: dict[str, list[str]] = {}
        for feature in self.features:
            if feature["kind"] == "one_hot":
                known_values.setdefault(feature["column"], []).append(feature["value"])
        for column, allowed in known_values.items():
            if customer.get(column) not in allowed:
                problems.append(f"{label}: `{column}` is {json.dumps(customer.get(column))}, expected one of {', '.join(allowed)}")
        return values

    def predict(self, customers: list[dict]) -> tuple[list[dict], list[str]]:
        problems: list[str] = []
        predictions = []
        for index, customer in enumerate(customers):
            label = f"customer {index + 1}"
            if not isinstance(customer, dict):
                problems.append(f"{label}: expected an object, got {type(customer).__name__}")
                continue
            customer_problems: list[str] = []
            vector = self.vector(customer, label, customer_problems)
            # A column used by two features (tenure in `tenure_months` and in a ratio) is
            # reported once.
            problems.extend(dict.fromkeys(customer_problems))
            score = self.bias + sum(weight * value for weight, value in zip(self.weights, vector))
            probability = 1.0 / (1.0 + math.exp(-score)) if score >= 0 else math.exp(score) / (1.0 + math.exp(score))
            predictions.append(
                {
                    "customer_id": customer.get("customer_id"),
                    "churn_probability": round(probability, 6),
                    "churn_predicted": probability >= self.threshold,
                }
            )
        return predictions, problems


def load_model(model_path: Path, environment: dict) -> tuple[LoadedModel | None, str | None]:
    """The model, or None and the reason it is unavailable (reported by /health)."""
    identity = {
        "name": environment.get("MODEL_NAME", "churn-classifier"),
        "version": environment.get("MODEL_VERSION"),
        "alias": environment.get("MODEL_ALIAS"),
        "path": str(model_path),
    }
    try:
        return LoadedModel(json.loads(model_path.read_text()), identity), None
    except FileNotFoundError:
        return None, f"no model file at {model_path}; set MODEL_PATH or mount the model"
    except (ValueError, KeyError, TypeError) as error:
        return None, f"model file {model_path} is unusable: {error}"


def make_handler(model: LoadedModel | None, unavailable_reason: str | None):
    class Handler(BaseHTTPRequestHandler):
        server_version = "serving-api/1"

        def log_message(self, format_string, *arguments):
            sys.stderr.write(f"serving-api: {self.command} {self.path} {format_string % arguments}\n")

        def _answer(self, status: int, document: dict) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != "/health":
                return self._answer(404, {"error": f"no route GET {self.path}; use /health or POST /predict"})
            if model is None:
                return self._answer(503, {"status": "unavailable", "reason": unavailable_reason})
            self._answer(200, {"status": "ok", "model": model.identity})

        def do_POST(self):
            if self.path != "/predict":
                return self._answer(404, {"error": f"no route POST {self.path}; use /predict"})
            if model is None:
                return self._answer(503, {"error": unavailable_reason})
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY_BYTES:
                return self._answer(400, {"error": f"body of {length} bytes; send 1 to {MAX_BODY_BYTES} bytes of JSON"})
            try:
                document = json.loads(self.rfile.read(length))
            except ValueError as error:
                return self._answer(400, {"error": f"body is not JSON: {error}"})
            customers = document.get("customers", [document]) if isinstance(document, dict) else None
            if not isinstance(customers, list) or not customers:
                return self._answer(400, {"error": 'send {"customers": [{...}]} or one customer object'})
            predictions, problems = model.predict(customers)
            if problems:
                return self._answer(400, {"error": "invalid customers", "problems": problems})
            self._answer(200, {"predictions": predictions, "model": model.identity})

    return Handler


def create_server(host: str, port: int, environment: dict) -> ThreadingHTTPServer:
    model_path = Path(environment.get("MODEL_PATH", "/models/churn-classifier/model.json"))
    model, unavailable_reason = load_model(model_path, environment)
    if model is None:
        sys.stderr.write(f"serving-api: model unavailable: {unavailable_reason}\n")
    return ThreadingHTTPServer((host, port), make_handler(model, unavailable_reason))


def main() -> int:
    host = os.environ.get("HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "8080"))
    server = create_server(host, port, dict(os.environ))
    # Kubernetes stops pods with SIGTERM: finish the request in flight, then exit.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    sys.stderr.write(f"serving-api: listening on {host}:{port}\n")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
