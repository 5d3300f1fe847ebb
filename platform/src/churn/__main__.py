"""Command line of the churn package: `python3 -m churn STEP ...`, the entry point of the
trainer image and of the Airflow tasks. Prints each step's summary as one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import sys

from churn import pipeline
from churn.features import FeatureError
from churn.registry import RegistryError
from churn.train import TrainingConfig


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m churn", description=__doc__)
    steps = parser.add_subparsers(dest="step", required=True)

    preprocess = steps.add_parser("preprocess", help="validate and split the customer extract")
    preprocess.add_argument("--output", required=True, help="directory for train.csv and holdout.csv")
    preprocess.add_argument("--source", help="raw customer CSV; synthetic data when absent")
    preprocess.add_argument("--rows", type=int, default=2000)
    preprocess.add_argument("--seed", type=int, default=7)

    train = steps.add_parser("train", help="train on DATA/train.csv")
    train.add_argument("--data", required=True)
    train.add_argument("--model", required=True, help="where to write model.json")
    train.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    train.add_argument("--learning-rate", type=float, default=TrainingConfig.learning_rate)

    evaluate = steps.add_parser("evaluate", help="measure the model on DATA/holdout.csv")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--metrics", help="where to write metrics.json")

    register = steps.add_parser("register", help="register the model in MLflow if it passes the gates")
    register.add_argument("--model", required=True)
    register.add_argument("--metrics", required=True, help="metrics.json from evaluate")
    register.add_argument("--name", default="churn-classifier")
    register.add_argument("--alias")
    register.add_argument("--min-metric", action="append", default=[], metavar="NAME=VALUE")
    register.add_argument(
        "--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow server URL (default: $MLFLOW_TRACKING_URI)",
    )

    fetch = steps.add_parser("fetch", help="download the model version an alias points to")
    fetch.add_argument("--name", default="churn-classifier")
    fetch.add_argument("--alias", required=True)
    fetch.add_argument("--output", required=True, help="where to write model.json")
    fetch.add_argument(
        "--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow server URL (default: $MLFLOW_TRACKING_URI)",
    )

    score = steps.add_parser("score", help="score a customer CSV")
    score.add_argument("--model", required=True)
    score.add_argument("--input", required=True)
    score.add_argument("--output", required=True)
    return parser.parse_args(argv)


def parse_min_metrics(pairs: list[str]) -> dict[str, float]:
    gates = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator:
            raise ValueError(f"--min-metric `{pair}` is not NAME=VALUE; write e.g. accuracy=0.8")
        gates[name.strip()] = float(value)
    return gates


def run(arguments: argparse.Namespace) -> dict:
    if arguments.step == "preprocess":
        return pipeline.preprocess(arguments.output, arguments.source, arguments.rows, arguments.seed)
    if arguments.step == "train":
        config = TrainingConfig(learning_rate=arguments.learning_rate, epochs=arguments.epochs)
        return pipeline.train_step(arguments.data, arguments.model, config)
    if arguments.step == "evaluate":
        return pipeline.evaluate_step(arguments.model, arguments.data, arguments.metrics)
    if arguments.step == "register":
        if not arguments.tracking_uri:
            raise ValueError("no MLflow tracking URI; pass --tracking-uri or set MLFLOW_TRACKING_URI")
        with open(arguments.metrics, encoding="utf-8") as handle:
            metrics = json.load(handle)
        return pipeline.register_step(
            arguments.model, metrics, arguments.tracking_uri, arguments.name,
            parse_min_metrics(arguments.min_metric), arguments.alias,
            token=os.environ.get("MLFLOW_TRACKING_TOKEN"),
        )
    if arguments.step == "fetch":
        if not arguments.tracking_uri:
            raise ValueError("no MLflow tracking URI; pass --tracking-uri or set MLFLOW_TRACKING_URI")
        return pipeline.fetch_step(
            arguments.tracking_uri, arguments.name, arguments.alias, arguments.output,
            token=os.environ.get("MLFLOW_TRACKING_TOKEN"),
        )
    return pipeline.score_step(arguments.model, arguments.input, arguments.output)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        summary = run(arguments)
    except (FeatureError, RegistryError, ValueError, OSError) as error:
        print(f"churn {arguments.step}: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
