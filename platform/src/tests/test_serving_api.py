"""The serving-api image's app.py against artifacts written by the churn package: the contract
between trainer and server (same probabilities), health reporting and input errors."""

import importlib.util
import json
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from churn import data
from churn.train import TrainingConfig, train

APP_PATH = Path(__file__).resolve().parents[2] / "images" / "serving-api" / "app.py"


def load_app():
    spec = importlib.util.spec_from_file_location("serving_api_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def request(url, body=None):
    data_bytes = json.dumps(body).encode() if body is not None else None
    http_request = urllib.request.Request(url, data=data_bytes, method="POST" if body is not None else "GET")
    http_request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(http_request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class ServingApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = load_app()
        cls.directory = tempfile.TemporaryDirectory()
        cls.customers = data.generate_customers(30, seed=8)
        cls.model = train(data.generate_customers(200, seed=2), TrainingConfig(epochs=40))
        cls.model_path = cls.model.save(Path(cls.directory.name) / "model.json")

    @classmethod
    def tearDownClass(cls):
        cls.directory.cleanup()

    def serve(self, environment):
        server = self.app.create_server("127.0.0.1", 0, environment)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def serve_model(self):
        return self.serve({"MODEL_PATH": str(self.model_path), "MODEL_VERSION": "7", "MODEL_ALIAS": "production"})

    def test_health_reports_the_loaded_model(self):
        status, body = request(self.serve_model() + "/health")
        self.assertEqual(status, 200)
        self.assertEqual(body["model"]["version"], "7")
        self.assertEqual(body["model"]["alias"], "production")

    def test_predictions_equal_the_trainers_probabilities(self):
        status, body = request(self.serve_model() + "/predict", {"customers": self.customers})
        self.assertEqual(status, 200)
        expected = self.model.predict_proba(self.customers)
        served = [prediction["churn_probability"] for prediction in body["predictions"]]
        for served_probability, expected_probability in zip(served, expected):
            self.assertAlmostEqual(served_probability, expected_probability, places=5)
        self.assertEqual(body["predictions"][0]["customer_id"], self.customers[0]["customer_id"])

    def test_one_customer_object_is_accepted(self):
        status, body = request(self.serve_model() + "/predict", self.customers[0])
        self.assertEqual(status, 200)
        self.assertEqual(len(body["predictions"]), 1)

    def test_every_problem_in_the_request_is_listed(self):
        bad = dict(self.customers[0], tenure_months="long", contract="weekly")
        status, body = request(self.serve_model() + "/predict", {"customers": [self.customers[1], bad]})
        self.assertEqual(status, 400)
        self.assertEqual(len(body["problems"]), 2, body)
        self.assertTrue(all(problem.startswith("customer 2:") for problem in body["problems"]))

    def test_an_empty_request_says_what_to_send(self):
        status, body = request(self.serve_model() + "/predict", {"customers": []})
        self.assertEqual(status, 400)
        self.assertIn("customers", body["error"])

    def test_without_a_model_health_fails_so_the_pod_never_gets_ready(self):
        base_url = self.serve({"MODEL_PATH": str(Path(self.directory.name) / "missing.json")})
        status, body = request(base_url + "/health")
        self.assertEqual(status, 503)
        self.assertIn("MODEL_PATH", body["reason"])
        self.assertEqual(request(base_url + "/predict", self.customers[0])[0], 503)

    def test_an_artifact_of_another_format_is_unavailable_not_a_crash(self):
        wrong = Path(self.directory.name) / "wrong.json"
        wrong.write_text(json.dumps({"format": "onnx", "weights": [], "bias": 0, "features": []}))
        status, body = request(self.serve({"MODEL_PATH": str(wrong)}) + "/health")
        self.assertEqual(status, 503)
        self.assertIn("onnx", body["reason"])

    def test_unknown_routes_are_404(self):
        self.assertEqual(request(self.serve_model() + "/metrics")[0], 404)


if __name__ == "__main__":
    unittest.main()
