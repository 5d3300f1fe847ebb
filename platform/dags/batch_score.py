"""Daily batch scoring: fetch the model the `production` alias points to, score the customer
extract, publish a summary.

Batch scoring uses the same registered version as the serving-api Deployment, because both
resolve the alias at run time instead of pinning a path. The `churn` package comes from the
trainer image and is imported inside the tasks.

Airflow Variables:
- `mlflow_tracking_uri`: URL of the environment's MLflow server;
- `churn_scoring_alias`: alias to score with (default `production`; dev scores with `candidate`);
- `churn_scoring_input`: customer CSV to score (default: a synthetic extract, for the example);
- `churn_work_dir`: shared directory for inputs and outputs (default /opt/airflow/work/churn).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Variable, get_current_context, task

MODEL_NAME = "churn-classifier"
DEFAULT_WORK_DIR = "/opt/airflow/work/churn"


def scoring_directory() -> str:
    context = get_current_context()
    return f"{Variable.get('churn_work_dir', default=DEFAULT_WORK_DIR)}/scores/{context['ds']}"


with DAG(
    dag_id="batch_score",
    description="Score all customers with the production churn model",
    doc_md=__doc__,
    schedule="30 5 * * *",
    start_date=pendulum.datetime(2025, 1, 6, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args={
        "owner": "ml-platform",
        "retries": 3,
        "retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
    },
    tags=["ml", "churn", "scoring"],
) as dag:

    @task
    def fetch_model() -> dict:
        from churn import pipeline

        return pipeline.fetch_step(
            tracking_uri=Variable.get("mlflow_tracking_uri"),
            model_name=MODEL_NAME,
            alias=Variable.get("churn_scoring_alias", default="production"),
            destination=f"{scoring_directory()}/model.json",
        )

    @task
    def extract_customers() -> str:
        from churn import data

        configured_input = Variable.get("churn_scoring_input", default="")
        if configured_input:
            return configured_input
        extract_path = f"{scoring_directory()}/customers.csv"
        data.write_csv(extract_path, data.generate_customers(1000, seed=int(get_current_context()["ds_nodash"])))
        return extract_path

    @task
    def score(model: dict, customers_path: str) -> dict:
        from churn import pipeline

        summary = pipeline.score_step(model["model_path"], customers_path, f"{scoring_directory()}/scores.csv")
        return {**summary, "model_version": model["version"], "model_alias": model["alias"]}

    @task
    def publish(summary: dict) -> None:
        share = summary["predicted_churners"] / max(summary["scored_rows"], 1)
        print(
            f"batch_score: {summary['scored_rows']} customers scored with {MODEL_NAME} "
            f"v{summary['model_version']} (@{summary['model_alias']}); "
            f"{summary['predicted_churners']} predicted churners ({share:.1%}); file {summary['output']}"
        )

    publish(score(fetch_model(), extract_customers()))
