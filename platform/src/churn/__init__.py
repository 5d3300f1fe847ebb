"""Churn prediction for the example ML platform: synthetic customer data, feature engineering,
a small logistic-regression trainer, evaluation and model registration.

Standard library only, so the same code runs in the trainer image, in Airflow workers and in
the platform's unit tests without installing anything. The package knows nothing about Airflow,
Kubernetes or the CI engine that deploys it; DAGs and images call into it.
"""

__version__ = "1.4.0"
