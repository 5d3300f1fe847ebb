"""Feature engineering: turns customer records into numeric vectors.

The fitted feature specification is plain data (a list of dicts) that travels inside the model
artifact, so the serving API applies exactly the transformation the trainer used without
importing this package. Kinds:

- `numeric`: a column, standardised with the training mean and standard deviation;
- `ratio`: numerator / max(denominator, 1), standardised the same way;
- `one_hot`: 1.0 when a column equals a value, else 0.0;
- `flag`: 1.0 when a column reads yes, true or 1, else 0.0.

Pure: no files, no network. Every problem in the input is collected and reported at once.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from churn.data import CONTRACT_TYPES

FeatureSpec = list[dict[str, Any]]

TRUE_WORDS = ("yes", "true", "1")
FALSE_WORDS = ("no", "false", "0")


class FeatureError(ValueError):
    """Raised with every problem found in a batch of records."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(
            f"{len(problems)} problem(s) in the input records: {shown}{more}; "
            "fix the records or the upstream extract"
        )


def default_feature_definitions() -> FeatureSpec:
    """The features of the churn model, not yet fitted."""
    definitions: FeatureSpec = [
        {"name": "tenure_months", "kind": "numeric", "column": "tenure_months"},
        {"name": "monthly_charges", "kind": "numeric", "column": "monthly_charges"},
        {"name": "support_tickets", "kind": "numeric", "column": "support_tickets"},
        {
            "name": "tickets_per_month",
            "kind": "ratio",
            "numerator": "support_tickets",
            "denominator": "tenure_months",
        },
        {"name": "has_streaming", "kind": "flag", "column": "has_streaming"},
    ]
    for contract in CONTRACT_TYPES:
        definitions.append(
            {
                "name": f"contract_{contract.replace('-', '_')}",
                "kind": "one_hot",
                "column": "contract",
                "value": contract,
            }
        )
    return definitions


def required_columns(spec: FeatureSpec) -> list[str]:
    columns: list[str] = []
    for feature in spec:
        for key in ("column", "numerator", "denominator"):
            if key in feature and feature[key] not in columns:
                columns.append(feature[key])
    return columns


def _raw_value(feature: dict[str, Any], record: dict[str, Any]) -> float:
    kind = feature["kind"]
    if kind == "numeric":
        return float(record[feature["column"]])
    if kind == "ratio":
        return float(record[feature["numerator"]]) / max(
            float(record[feature["denominator"]]), 1.0
        )
    if kind == "one_hot":
        return 1.0 if str(record[feature["column"]]) == feature["value"] else 0.0
    if kind == "flag":
        return 1.0 if str(record[feature["column"]]).strip().lower() in TRUE_WORDS else 0.0
    raise ValueError(
        f"feature `{feature.get('name')}` has unknown kind `{kind}`; "
        "use numeric, ratio, one_hot or flag"
    )


def record_problems(record: dict[str, Any], spec: FeatureSpec, label: str) -> list[str]:
    """Everything wrong with one record for this spec; `label` names the record in messages."""
    problems = []
    for column in required_columns(spec):
        if column not in record or str(record[column]).strip() == "":
            problems.append(f"{label}: column `{column}` is missing")
    numeric_columns = {
        feature[key]
        for feature in spec
        if feature["kind"] in ("numeric", "ratio")
        for key in ("column", "numerator", "denominator")
        if key in feature
    }
    for column in sorted(numeric_columns):
        value = record.get(column)
        if value is None or str(value).strip() == "":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(f"{label}: column `{column}` is `{value}`, not a number")
            continue
        if math.isnan(number) or math.isinf(number):
            problems.append(f"{label}: column `{column}` is `{value}`, not a finite number")
    for feature in spec:
        column = feature.get("column")
        value = record.get(column) if column else None
        if value is None or str(value).strip() == "":
            continue
        if feature["kind"] == "flag":
            if str(value).strip().lower() not in TRUE_WORDS + FALSE_WORDS:
                problems.append(
                    f"{label}: column `{column}` is `{value}`; write yes or no"
                )
    one_hot_values: dict[str, list[str]] = {}
    for feature in spec:
        if feature["kind"] == "one_hot":
            one_hot_values.setdefault(feature["column"], []).append(feature["value"])
    for column, allowed_values in one_hot_values.items():
        value = record.get(column)
        if value is not None and str(value).strip() != "" and value not in allowed_values:
            problems.append(
                f"{label}: column `{column}` is `{value}`; expected one of "
                + ", ".join(allowed_values)
            )
    return problems


def validate(records: Iterable[dict[str, Any]], spec: FeatureSpec) -> None:
    """Raises `FeatureError` listing every problem in every record, or returns."""
    problems: list[str] = []
    for index, record in enumerate(records):
        label = f"record {index + 1}"
        if record.get("customer_id"):
            label += f" ({record['customer_id']})"
        problems.extend(record_problems(record, spec, label))
    if problems:
        raise FeatureError(problems)


def fit(records: list[dict[str, Any]], definitions: FeatureSpec | None = None) -> FeatureSpec:
    """Returns the definitions with the mean and standard deviation of every scaled feature."""
    definitions = default_feature_definitions() if definitions is None else definitions
    if not records:
        raise FeatureError(["no records to fit the features on"])
    validate(records, definitions)
    fitted: FeatureSpec = []
    for feature in definitions:
        feature = dict(feature)
        if feature["kind"] in ("numeric", "ratio"):
            values = [_raw_value(feature, record) for record in records]
            mean = sum(values) / len(values)
            variance = sum((value - mean) ** 2 for value in values) / len(values)
            feature["mean"] = round(mean, 6)
            # A constant column would divide by zero; it then contributes nothing.
            feature["std"] = round(math.sqrt(variance), 6) or 1.0
        fitted.append(feature)
    return fitted


def transform_record(record: dict[str, Any], spec: FeatureSpec) -> list[float]:
    vector = []
    for feature in spec:
        value = _raw_value(feature, record)
        if feature["kind"] in ("numeric", "ratio"):
            value = (value - feature["mean"]) / feature["std"]
        vector.append(value)
    return vector


def transform(records: list[dict[str, Any]], spec: FeatureSpec) -> list[list[float]]:
    validate(records, spec)
    return [transform_record(record, spec) for record in records]


def labels(records: list[dict[str, Any]], column: str = "churned") -> list[int]:
    """The 0/1 label of every record; raises `FeatureError` naming every bad one."""
    problems = []
    values = []
    for index, record in enumerate(records):
        raw = str(record.get(column, "")).strip().lower()
        if raw in TRUE_WORDS:
            values.append(1)
        elif raw in FALSE_WORDS:
            values.append(0)
        else:
            problems.append(f"record {index + 1}: label `{column}` is `{raw}`; write 1 or 0")
    if problems:
        raise FeatureError(problems)
    return values
