"""check_dags.py on small DAG sources, one problem per case."""

import unittest

from check_dags import check_source

GOOD = '''
from airflow.sdk import DAG, Variable, task
DEFAULTS = {"owner": "ml-platform"}
with DAG(dag_id="d", schedule=None, max_active_runs=1, default_args=DEFAULTS) as dag:
    @task
    def read():
        return Variable.get("mlflow_tracking_uri")
    read()
'''


class CheckDagsTest(unittest.TestCase):
    def check(self, source, expected_fragments):
        problems = check_source("dags/d.py", source)
        self.assertEqual(len(problems), len(expected_fragments), problems)
        for problem, fragment in zip(problems, expected_fragments):
            self.assertIn(fragment, problem)

    def test_a_good_dag_has_no_problems(self):
        self.check(GOOD, [])

    def test_a_syntax_error_names_the_line(self):
        self.check("with DAG(:\n", ["dags/d.py:1: does not compile"])

    def test_a_file_without_a_dag(self):
        self.check("x = 1\n", ["defines no DAG"])

    def test_missing_arguments_are_each_named(self):
        self.check('DAG(dag_id="d", default_args={"owner": "me"})\n', ["`schedule=`", "`max_active_runs=`"])

    def test_the_default_owner_does_not_count(self):
        self.check(GOOD.replace('"ml-platform"', '"airflow"'), ["names no owner"])

    def test_no_default_args_means_no_owner(self):
        self.check('DAG(dag_id="d", schedule=None, max_active_runs=1)\n', ["names no owner"])

    def test_variable_lookup_at_parse_time_is_reported_with_its_line(self):
        source = GOOD + 'URI = Variable.get("mlflow_tracking_uri")\n'
        self.check(source, ["dags/d.py:9: `Variable.get(...)` reads an Airflow Variable at parse time"])

    def test_calls_in_decorators_run_at_import_and_are_checked(self):
        source = GOOD + '@task(pool=Variable.get("pool"))\ndef later():\n    pass\n'
        self.check(source, ["`Variable.get(...)`"])

    def test_the_bundled_dags_pass(self):
        from pathlib import Path

        folder = Path(__file__).resolve().parents[2] / "dags"
        for path in sorted(folder.glob("*.py")):
            self.assertEqual(check_source(str(path), path.read_text()), [], path.name)


if __name__ == "__main__":
    unittest.main()
