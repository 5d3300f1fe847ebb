"""Model registration against a fake MLflow server that speaks the same REST endpoints."""

import socket
import tempfile
import unittest
from pathlib import Path

from churn import data, pipeline, registry
from churn.train import TrainingConfig, train
from tests.fake_mlflow import FakeMlflow

METRICS = {"accuracy": 0.81, "f1_score": 0.74, "rows": 400}


class RegistryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory()
        cls.model_path = train(data.generate_customers(80, seed=5), TrainingConfig(epochs=5)).save(
            Path(cls.directory.name) / "model.json"
        )

    @classmethod
    def tearDownClass(cls):
        cls.directory.cleanup()

    def register(self, fake, **options):
        client = registry.MlflowClient(fake.url, token=options.pop("token", None))
        return registry.register_model(client, self.model_path, "churn-classifier", METRICS, **options)

    def test_registration_creates_run_version_and_alias(self):
        with FakeMlflow() as fake:
            registered = self.register(fake, alias="candidate", tags={"git_sha": "abc123"})
        self.assertEqual(registered.version, "1")
        self.assertEqual(registered.alias, "candidate")
        self.assertEqual(
            fake.endpoints(),
            ["experiments/get-by-name", "experiments/create", "runs/create", "runs/log-batch",
             "mlflow-artifacts", "runs/update", "registered-models/create", "model-versions/create",
             "registered-models/alias"],
        )
        run = fake.runs[registered.run_id]
        self.assertEqual(run["status"], "FINISHED")
        self.assertEqual(run["metrics"], {"accuracy": 0.81, "f1_score": 0.74, "rows": 400.0})
        self.assertEqual(fake.aliases[("churn-classifier", "candidate")], "1")
        self.assertEqual(registered.source, f"mlflow-artifacts:/1/{registered.run_id}/artifacts/model")

    def test_the_uploaded_artifact_is_the_model_file(self):
        with FakeMlflow() as fake:
            registered = self.register(fake)
        uploaded = fake.artifacts[f"1/{registered.run_id}/artifacts/model/model.json"]
        self.assertEqual(uploaded, self.model_path.read_bytes())

    def test_a_second_registration_adds_a_version_to_the_existing_model(self):
        with FakeMlflow() as fake:
            first = self.register(fake)
            second = self.register(fake)
        self.assertEqual((first.version, second.version), ("1", "2"))
        self.assertEqual(fake.endpoints().count("experiments/create"), 1)

    def test_the_model_an_alias_points_to_can_be_fetched_back(self):
        with FakeMlflow() as fake, tempfile.TemporaryDirectory() as directory:
            self.register(fake)
            self.register(fake, alias="production")
            client = registry.MlflowClient(fake.url)
            fetched = registry.fetch_model(client, "churn-classifier", "production", Path(directory) / "m.json")
            self.assertEqual(fetched["version"], "2")
            self.assertEqual((Path(directory) / "m.json").read_bytes(), self.model_path.read_bytes())

    def test_fetching_through_a_missing_alias_names_it(self):
        with FakeMlflow() as fake, tempfile.TemporaryDirectory() as directory:
            self.register(fake)
            with self.assertRaises(registry.RegistryError) as raised:
                registry.fetch_model(registry.MlflowClient(fake.url), "churn-classifier", "production",
                                     Path(directory) / "m.json")
        self.assertIn("no alias production", str(raised.exception))

    def test_a_local_artifact_root_receives_a_copy(self):
        with tempfile.TemporaryDirectory() as artifact_root:
            with FakeMlflow(artifact_root=artifact_root) as fake:
                registered = self.register(fake)
            copied = Path(artifact_root) / "1" / registered.run_id / "artifacts" / "model" / "model.json"
            self.assertEqual(copied.read_bytes(), self.model_path.read_bytes())

    def test_a_server_error_names_the_endpoint_and_code_but_not_the_token(self):
        with FakeMlflow() as fake:
            fake.fail_endpoint = "model-versions/create"
            with self.assertRaises(registry.RegistryError) as raised:
                self.register(fake, token="s3cret-token")
        message = str(raised.exception)
        self.assertIn("/api/2.0/mlflow/model-versions/create answered 500 INTERNAL_ERROR", message)
        self.assertNotIn("s3cret-token", message)
        self.assertIn("Bearer s3cret-token", fake.authorization_headers)

    def test_an_unreachable_server_says_so(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        client = registry.MlflowClient(f"http://127.0.0.1:{closed_port}", timeout_seconds=2)
        with self.assertRaises(registry.RegistryError) as raised:
            registry.register_model(client, self.model_path, "churn-classifier", METRICS)
        self.assertIn("unreachable", str(raised.exception))

    def test_a_tracking_uri_that_is_not_http_is_refused(self):
        with self.assertRaises(registry.RegistryError) as raised:
            registry.MlflowClient("sqlite:///mlflow.db")
        self.assertIn("mlflow_tracking_uri", str(raised.exception))

    def test_a_model_below_its_gates_is_not_registered(self):
        with FakeMlflow() as fake:
            with self.assertRaises(ValueError) as raised:
                pipeline.register_step(self.model_path, METRICS, fake.url, "churn-classifier",
                                       min_metrics={"accuracy": 0.9, "f1_score": 0.8})
        self.assertIn("`accuracy` is 0.8100, below the gate 0.9000", str(raised.exception))
        self.assertIn("`f1_score`", str(raised.exception))
        self.assertEqual(fake.requests, [])


if __name__ == "__main__":
    unittest.main()
