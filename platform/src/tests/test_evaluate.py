"""Metrics and promotion gates, as tables of small cases."""

import unittest

from churn import evaluate


class MetricsTest(unittest.TestCase):
    def check(self, labels, predictions, expected):
        measured = evaluate.metrics(labels, predictions)
        for name, value in expected.items():
            self.assertAlmostEqual(measured[name], value, places=6, msg=name)

    def test_perfect_predictions(self):
        self.check([1, 0, 1, 0], [1, 0, 1, 0], {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1_score": 1.0})

    def test_all_wrong(self):
        self.check([1, 0], [0, 1], {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1_score": 0.0})

    def test_mixed(self):
        # tp=2 fp=1 fn=1 tn=1
        self.check([1, 1, 1, 0, 0], [1, 1, 0, 1, 0],
                   {"accuracy": 0.6, "precision": 2 / 3, "recall": 2 / 3, "f1_score": 2 / 3})

    def test_no_positive_predictions_give_zero_precision_not_a_crash(self):
        self.check([1, 0, 0], [0, 0, 0], {"accuracy": 2 / 3, "precision": 0.0, "recall": 0.0, "f1_score": 0.0})

    def test_f1_is_the_harmonic_mean(self):
        # tp=1 fp=0 fn=3: precision 1, recall 0.25, f1 0.4
        self.check([1, 1, 1, 1], [1, 0, 0, 0], {"precision": 1.0, "recall": 0.25, "f1_score": 0.4})

    def test_lengths_must_match(self):
        with self.assertRaises(ValueError):
            evaluate.metrics([1, 0], [1])

    def test_no_labels_is_an_error(self):
        with self.assertRaises(ValueError):
            evaluate.metrics([], [])


class GateTest(unittest.TestCase):
    def check(self, measured, gates, expected_fragments):
        failures = evaluate.gate_failures(measured, gates)
        self.assertEqual(len(failures), len(expected_fragments), failures)
        for failure, fragment in zip(failures, expected_fragments):
            self.assertIn(fragment, failure)

    def test_passing_gates(self):
        self.check({"accuracy": 0.8, "f1_score": 0.7}, {"accuracy": 0.75, "f1_score": 0.7}, [])

    def test_a_missed_gate_names_metric_and_values(self):
        self.check({"accuracy": 0.7}, {"accuracy": 0.75}, ["`accuracy` is 0.7000, below the gate 0.7500"])

    def test_every_missed_gate_is_reported(self):
        self.check({"accuracy": 0.1, "f1_score": 0.1}, {"accuracy": 0.5, "f1_score": 0.5}, ["accuracy", "f1_score"])

    def test_a_gate_on_an_unmeasured_metric_fails(self):
        self.check({"accuracy": 0.9}, {"auc": 0.8}, ["`auc` was not measured"])

    def test_no_gates_pass(self):
        self.check({"accuracy": 0.1}, {}, [])


if __name__ == "__main__":
    unittest.main()
