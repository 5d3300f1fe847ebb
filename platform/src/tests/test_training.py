"""Training and the model artifact: the trainer learns the synthetic rule, runs are repeatable,
and a saved model predicts exactly what the in-memory one did."""

import json
import tempfile
import unittest
from pathlib import Path

from churn import data, evaluate
from churn.model import ARTIFACT_FORMAT, Model, sigmoid
from churn.train import TrainingConfig, train

FAST = TrainingConfig(epochs=120, learning_rate=0.5)


class TrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        records = data.generate_customers(600, seed=21)
        cls.training_rows, cls.holdout_rows = data.split_rows(records, 0.25)
        cls.model = train(cls.training_rows, FAST)

    def test_the_model_beats_predicting_the_majority_class(self):
        measured = evaluate.evaluate(self.model, self.holdout_rows)
        positive_rate = sum(int(row["churned"]) for row in self.holdout_rows) / len(self.holdout_rows)
        majority_accuracy = max(positive_rate, 1 - positive_rate)
        self.assertGreater(measured["accuracy"], majority_accuracy + 0.1)
        self.assertGreater(measured["f1_score"], 0.6)

    def test_weights_follow_the_rule_that_generated_the_data(self):
        weight_of = {f["name"]: w for f, w in zip(self.model.feature_spec, self.model.weights)}
        self.assertLess(weight_of["tenure_months"], 0, "long tenure must lower churn")
        self.assertGreater(weight_of["support_tickets"], 0, "support tickets must raise churn")
        self.assertGreater(weight_of["contract_month_to_month"], weight_of["contract_two_year"])

    def test_training_is_deterministic(self):
        again = train(self.training_rows, FAST)
        self.assertEqual(again.weights, self.model.weights)
        self.assertEqual(again.bias, self.model.bias)

    def test_saved_model_predicts_like_the_trained_one(self):
        with tempfile.TemporaryDirectory() as directory:
            path = self.model.save(Path(directory) / "model.json")
            loaded = Model.load(path)
            self.assertEqual(json.loads(path.read_text())["format"], ARTIFACT_FORMAT)
        self.assertEqual(loaded.predict_proba(self.holdout_rows), self.model.predict_proba(self.holdout_rows))

    def test_metadata_records_how_the_model_was_trained(self):
        self.assertEqual(self.model.metadata["training_rows"], len(self.training_rows))
        self.assertEqual(self.model.metadata["config"]["epochs"], FAST.epochs)


class ConfigAndFormatTest(unittest.TestCase):
    def test_every_bad_setting_is_reported(self):
        problems = TrainingConfig(learning_rate=0, epochs=0, l2=-1, threshold=1.5).problems()
        self.assertEqual(len(problems), 4, problems)

    def test_training_refuses_a_bad_config(self):
        with self.assertRaises(ValueError):
            train(data.generate_customers(10), TrainingConfig(epochs=0))

    def test_an_artifact_of_another_format_is_refused_by_name(self):
        with self.assertRaises(ValueError) as raised:
            Model.from_dict({"format": "sklearn/v9", "weights": [], "bias": 0, "features": []})
        self.assertIn("sklearn/v9", str(raised.exception))

    def test_weights_must_match_the_features(self):
        with self.assertRaises(ValueError):
            Model(weights=[1.0], bias=0.0, feature_spec=[])

    def test_sigmoid_survives_extreme_scores(self):
        self.assertEqual(sigmoid(-1000), 0.0)
        self.assertEqual(sigmoid(1000), 1.0)
        self.assertEqual(sigmoid(0), 0.5)


if __name__ == "__main__":
    unittest.main()
