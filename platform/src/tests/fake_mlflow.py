"""An in-process fake of the MLflow REST endpoints that `churn.registry` uses. It keeps
experiments, runs, registered models, versions, aliases and uploaded artifacts in memory and
records every request, so tests can assert what a real server would have received."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeMlflow:
    def __init__(self, artifact_root: str = "mlflow-artifacts:"):
        self.artifact_root = artifact_root
        self.requests: list[tuple[str, str, dict]] = []
        self.authorization_headers: list[str | None] = []
        self.experiments: dict[str, str] = {}
        self.runs: dict[str, dict] = {}
        self.models: dict[str, list[dict]] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self.artifacts: dict[str, bytes] = {}
        self.fail_endpoint: str | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *arguments):
                pass

            def _answer(self, status, document):
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method):
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw_body = self.rfile.read(length) if length else b""
                fake.authorization_headers.append(self.headers.get("Authorization"))
                if parsed.path.startswith("/api/2.0/mlflow-artifacts/artifacts/"):
                    key = parsed.path[len("/api/2.0/mlflow-artifacts/artifacts/"):]
                    fake.requests.append((method, "mlflow-artifacts", {"path": key}))
                    if method == "PUT":
                        fake.artifacts[key] = raw_body
                        return self._answer(200, {})
                    if key not in fake.artifacts:
                        return self._answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": key})
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(fake.artifacts[key])))
                    self.end_headers()
                    self.wfile.write(fake.artifacts[key])
                    return None
                endpoint = parsed.path[len("/api/2.0/mlflow/"):]
                if method == "GET":
                    payload = dict(urllib.parse.parse_qsl(parsed.query))
                else:
                    payload = json.loads(raw_body or b"{}")
                fake.requests.append((method, endpoint, payload))
                if endpoint == fake.fail_endpoint:
                    return self._answer(500, {"error_code": "INTERNAL_ERROR", "message": "database is locked"})
                status, document = fake.route(endpoint, payload)
                self._answer(status, document)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exception):
        self.server.shutdown()
        self.server.server_close()

    def endpoints(self) -> list[str]:
        return [endpoint for _, endpoint, _ in self.requests]

    def route(self, endpoint: str, payload: dict):
        if endpoint == "experiments/get-by-name":
            name = payload["experiment_name"]
            if name not in self.experiments:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"no experiment {name}"}
            return 200, {"experiment": {"experiment_id": self.experiments[name], "name": name}}
        if endpoint == "experiments/create":
            self.experiments[payload["name"]] = str(len(self.experiments) + 1)
            return 200, {"experiment_id": self.experiments[payload["name"]]}
        if endpoint == "runs/create":
            run_id = f"run{len(self.runs) + 1:04d}"
            # `mlflow-artifacts:/1/run0001/artifacts` or `/srv/mlflow/1/run0001/artifacts`
            root = self.artifact_root.rstrip("/")
            artifact_uri = f"{root}/{payload['experiment_id']}/{run_id}/artifacts"
            self.runs[run_id] = {"status": "RUNNING", "metrics": {}, "params": {}, "tags": payload.get("tags", [])}
            return 200, {"run": {"info": {"run_id": run_id, "artifact_uri": artifact_uri}}}
        if endpoint == "runs/log-batch":
            run = self.runs[payload["run_id"]]
            run["metrics"].update({m["key"]: m["value"] for m in payload.get("metrics", [])})
            run["params"].update({p["key"]: p["value"] for p in payload.get("params", [])})
            return 200, {}
        if endpoint == "runs/update":
            self.runs[payload["run_id"]]["status"] = payload["status"]
            return 200, {"run_info": {}}
        if endpoint == "registered-models/create":
            if payload["name"] in self.models:
                return 400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}
            self.models[payload["name"]] = []
            return 200, {"registered_model": {"name": payload["name"]}}
        if endpoint == "model-versions/create":
            versions = self.models[payload["name"]]
            version = {"version": str(len(versions) + 1), "source": payload["source"], "run_id": payload["run_id"]}
            versions.append(version)
            return 200, {"model_version": version}
        if endpoint == "registered-models/alias" and "version" in payload:
            self.aliases[(payload["name"], payload["alias"])] = payload["version"]
            return 200, {}
        if endpoint == "registered-models/alias":
            key = (payload["name"], payload["alias"])
            if key not in self.aliases:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"no alias {key[1]}"}
            versions = self.models[key[0]]
            return 200, {"model_version": versions[int(self.aliases[key]) - 1]}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": endpoint}
