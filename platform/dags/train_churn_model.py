"""Weekly training of the churn classifier: preprocess -> train -> evaluate -> register.

Each task calls the `churn` package (platform/src/churn), which the trainer image puts on the
workers' PYTHONPATH. The package is imported inside the tasks so that parsing this file stays fast
and needs nothing but Airflow.

Airflow Variables (set per environment, never hard-coded here):
- `mlflow_tracking_uri`: URL of the environment's MLflow server (required by `register`);
- `churn_work_dir`: shared directory for the run's data and model (default /opt/airflow/work/churn);
- `churn_min_metrics`: JSON floor a candidate must reach to be registered
  (default {"accuracy": 0.70, "f1_score": 0.60}); promotion gates live in platform/models/;
- `platform_environment`: dev, staging or production, recorded as a tag on the MLflow run.

A registered version gets the alias `candidate`; moving `staging`/`production` to it is a change
to platform/models/<environment>.yaml, reviewed and promoted like any other release.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Variable, get_current_context, task

MODEL_NAME = "churn-classifier"
DEFAULT_WORK_DIR = "/opt/airflow/work/churn"
DEFAULT_MIN_METRICS = {"accuracy": 0.70, "f1_score": 0.60}


def run_directory() -> str:
    """One directory per DAG run, so retries and parallel backfills never share files."""
    context = get_current_context()
    safe_run_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in context["run_id"])
    return f"{Variable.get('churn_work_dir', default=DEFAULT_WORK_DIR)}/{safe_run_id}"


with DAG(
    dag_id="train_churn_model",
    description="Train, evaluate and register the churn classifier",
    doc_md=__doc__,
    schedule="0 3 * * 1",
    start_date=pendulum.datetime(2025, 1, 6, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=45),
    },
    tags=["ml", "churn", "training"],
) as dag:

    @task
    def preprocess() -> str:
        from churn import pipeline

        data_directory = f"{run_directory()}/data"
        summary = pipeline.preprocess(data_directory, rows=5000)
        print(f"preprocess: {summary}")
        return data_directory

    @task
    def train(data_directory: str) -> str:
        from churn import pipeline

        model_path = f"{run_directory()}/model/model.json"
        summary = pipeline.train_step(data_directory, model_path)
        print(f"train: {summary}")
        return model_path

    @task
    def evaluate(model_path: str, data_directory: str) -> dict:
        from churn import pipeline

        return pipeline.evaluate_step(model_path, data_directory, f"{run_directory()}/metrics.json")

    @task
    def register(model_path: str, metrics: dict) -> dict:
        from churn import pipeline

        context = get_current_context()
        return pipeline.register_step(
            model_path,
            metrics,
            tracking_uri=Variable.get("mlflow_tracking_uri"),
            model_name=MODEL_NAME,
            min_metrics=Variable.get(
                "churn_min_metrics", default=DEFAULT_MIN_METRICS, deserialize_json=True
            ),
            alias="candidate",
            tags={
                "airflow_dag_id": context["dag"].dag_id,
                "airflow_run_id": context["run_id"],
                "environment": Variable.get("platform_environment", default="dev"),
            },
        )

    prepared_data = preprocess()
    trained_model = train(prepared_data)
    measured_metrics = evaluate(trained_model, prepared_data)
    register(trained_model, measured_metrics)
