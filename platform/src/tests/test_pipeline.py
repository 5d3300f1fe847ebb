"""The pipeline as the DAGs and the trainer image run it: `python3 -m churn STEP ...`."""

import contextlib
import io
import json
import tempfile
import unittest
from pathlib import Path

from churn import data
from churn.__main__ import main
from tests.fake_mlflow import FakeMlflow


def run_cli(*arguments):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        exit_code = main(list(arguments))
    summary = json.loads(stdout.getvalue()) if exit_code == 0 else None
    return exit_code, summary, stderr.getvalue()


class PipelineTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.root = Path(self.directory.name)

    def tearDown(self):
        self.directory.cleanup()

    def test_preprocess_train_evaluate_register_and_score(self):
        data_directory, model, metrics = self.root / "data", self.root / "model.json", self.root / "metrics.json"
        self.assertEqual(run_cli("preprocess", "--output", str(data_directory), "--rows", "500")[1]["holdout_rows"], 100)
        self.assertEqual(run_cli("train", "--data", str(data_directory), "--model", str(model), "--epochs", "80")[0], 0)
        exit_code, measured, _ = run_cli("evaluate", "--model", str(model), "--data", str(data_directory),
                                         "--metrics", str(metrics))
        self.assertEqual(exit_code, 0)
        self.assertEqual(json.loads(metrics.read_text()), measured)
        self.assertGreater(measured["accuracy"], 0.65)
        with FakeMlflow() as fake:
            exit_code, registered, error = run_cli(
                "register", "--model", str(model), "--metrics", str(metrics), "--alias", "candidate",
                "--min-metric", "accuracy=0.6", "--tracking-uri", fake.url)
            self.assertEqual(exit_code, 0, error)
            self.assertEqual((registered["version"], registered["alias"]), ("1", "candidate"))
            fetched_model = self.root / "fetched" / "model.json"
            exit_code, fetched, error = run_cli("fetch", "--alias", "candidate", "--output", str(fetched_model),
                                                "--tracking-uri", fake.url)
        self.assertEqual(exit_code, 0, error)
        self.assertEqual(fetched["version"], "1")
        self.assertEqual(fetched_model.read_bytes(), model.read_bytes())
        exit_code, scored, _ = run_cli("score", "--model", str(model), "--input", str(data_directory / "holdout.csv"),
                                       "--output", str(self.root / "scores.csv"))
        self.assertEqual(scored["scored_rows"], 100)
        scores = data.read_csv(self.root / "scores.csv")
        self.assertEqual(list(scores[0]), ["customer_id", "churn_predicted", "churn_probability"])
        self.assertTrue(all(0.0 <= float(row["churn_probability"]) <= 1.0 for row in scores))

    def test_a_bad_extract_fails_with_every_problem_named(self):
        source = self.root / "raw.csv"
        rows = data.generate_customers(5)
        rows[1]["contract"] = "weekly"
        rows[3]["monthly_charges"] = "n/a"
        data.write_csv(source, rows)
        exit_code, _, error = run_cli("preprocess", "--output", str(self.root / "out"), "--source", str(source))
        self.assertEqual(exit_code, 1)
        self.assertIn("2 problem(s)", error)
        self.assertIn("`contract` is `weekly`", error)
        self.assertIn("`monthly_charges` is `n/a`", error)
        self.assertFalse((self.root / "out").exists(), "nothing is written for a bad extract")

    def test_register_without_a_tracking_uri_says_how_to_give_one(self):
        metrics = self.root / "metrics.json"
        metrics.write_text("{}")
        exit_code, _, error = run_cli("register", "--model", "m.json", "--metrics", str(metrics), "--tracking-uri", "")
        self.assertEqual(exit_code, 1)
        self.assertIn("MLFLOW_TRACKING_URI", error)

    def test_a_malformed_gate_is_refused(self):
        metrics = self.root / "metrics.json"
        metrics.write_text("{}")
        exit_code, _, error = run_cli("register", "--model", "m.json", "--metrics", str(metrics),
                                      "--tracking-uri", "http://mlflow.invalid", "--min-metric", "accuracy")
        self.assertEqual(exit_code, 1)
        self.assertIn("write e.g. accuracy=0.8", error)


if __name__ == "__main__":
    unittest.main()
