"""Feature engineering: fitted specs, transformations, and the problems reported for bad input."""

import unittest

from churn import data, features


def record(**overrides):
    base = {
        "customer_id": "C1",
        "tenure_months": "12",
        "monthly_charges": "50.0",
        "support_tickets": "2",
        "contract": "one-year",
        "has_streaming": "yes",
        "churned": "0",
    }
    base.update(overrides)
    return base


class ProblemsTest(unittest.TestCase):
    def check(self, bad_record, expected_fragments):
        spec = features.default_feature_definitions()
        problems = features.record_problems(bad_record, spec, "record 1")
        self.assertEqual(len(problems), len(expected_fragments), problems)
        for problem, fragment in zip(problems, expected_fragments):
            self.assertIn(fragment, problem)

    def test_a_good_record_has_no_problems(self):
        self.check(record(), [])

    def test_a_missing_column_is_named(self):
        bad = record()
        del bad["tenure_months"]
        self.check(bad, ["column `tenure_months` is missing"])

    def test_an_empty_value_counts_as_missing(self):
        self.check(record(support_tickets=" "), ["column `support_tickets` is missing"])

    def test_text_in_a_numeric_column_is_shown(self):
        self.check(record(monthly_charges="lots"), ["`monthly_charges` is `lots`, not a number"])

    def test_infinite_numbers_are_refused(self):
        self.check(record(monthly_charges="inf"), ["not a finite number"])

    def test_an_unknown_contract_lists_the_known_ones(self):
        self.check(record(contract="weekly"), ["`contract` is `weekly`; expected one of month-to-month"])

    def test_a_flag_must_read_yes_or_no(self):
        self.check(record(has_streaming="maybe"), ["`has_streaming` is `maybe`; write yes or no"])

    def test_every_problem_of_a_record_is_reported_together(self):
        self.check(
            record(monthly_charges="x", contract="weekly", has_streaming="maybe"),
            ["monthly_charges", "has_streaming", "contract"],
        )


class ValidateTest(unittest.TestCase):
    def test_problems_of_all_records_are_collected(self):
        records = [record(customer_id="A", tenure_months="x"), record(), record(customer_id="B", contract="?")]
        with self.assertRaises(features.FeatureError) as raised:
            features.validate(records, features.default_feature_definitions())
        self.assertEqual(len(raised.exception.problems), 2)
        self.assertIn("record 1 (A)", raised.exception.problems[0])
        self.assertIn("record 3 (B)", raised.exception.problems[1])

    def test_labels_report_every_bad_value(self):
        with self.assertRaises(features.FeatureError) as raised:
            features.labels([record(churned="1"), record(churned="maybe"), record(churned="")])
        self.assertEqual(len(raised.exception.problems), 2)

    def test_labels_accept_the_usual_spellings(self):
        self.assertEqual(
            features.labels([record(churned=value) for value in ("1", "0", "yes", "no", "True", "false")]),
            [1, 0, 1, 0, 1, 0],
        )


class FitTransformTest(unittest.TestCase):
    def test_scaled_training_features_have_zero_mean(self):
        records = data.generate_customers(300, seed=3)
        spec = features.fit(records)
        vectors = features.transform(records, spec)
        for index, feature in enumerate(spec):
            if feature["kind"] in ("numeric", "ratio"):
                column_mean = sum(vector[index] for vector in vectors) / len(vectors)
                self.assertAlmostEqual(column_mean, 0.0, places=4, msg=feature["name"])

    def test_one_hot_features_mark_exactly_one_contract(self):
        records = data.generate_customers(50, seed=4)
        spec = features.fit(records)
        contract_indexes = [i for i, feature in enumerate(spec) if feature["kind"] == "one_hot"]
        for vector in features.transform(records, spec):
            self.assertEqual(sum(vector[i] for i in contract_indexes), 1.0)

    def test_ratio_divides_by_at_least_one_month(self):
        spec = [{"name": "rate", "kind": "ratio", "numerator": "support_tickets",
                 "denominator": "tenure_months", "mean": 0.0, "std": 1.0}]
        self.assertEqual(features.transform_record(record(support_tickets="3", tenure_months="0"), spec), [3.0])

    def test_a_constant_column_does_not_divide_by_zero(self):
        records = [record(customer_id=str(i), tenure_months="5") for i in range(5)]
        spec = features.fit(records)
        tenure = next(feature for feature in spec if feature["name"] == "tenure_months")
        self.assertEqual(tenure["std"], 1.0)
        self.assertEqual(features.transform(records, spec)[0][0], 0.0)

    def test_fitting_on_nothing_is_an_error(self):
        with self.assertRaises(features.FeatureError):
            features.fit([])

    def test_synthetic_data_is_reproducible(self):
        self.assertEqual(data.generate_customers(20, seed=9), data.generate_customers(20, seed=9))
        self.assertNotEqual(data.generate_customers(20, seed=9), data.generate_customers(20, seed=10))


if __name__ == "__main__":
    unittest.main()
