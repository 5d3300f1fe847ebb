"""Customer records: the columns the platform expects, a deterministic synthetic generator
(the example platform has no real customers) and CSV reading and writing.

Knows nothing about features or models; `features` turns these records into numbers.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path
from typing import Iterable

CONTRACT_TYPES = ("month-to-month", "one-year", "two-year")

COLUMNS = (
    "customer_id",
    "tenure_months",
    "monthly_charges",
    "support_tickets",
    "contract",
    "has_streaming",
    "churned",
)


def generate_customers(count: int, seed: int = 7) -> list[dict[str, str]]:
    """Returns `count` customers whose churn follows a known logistic rule plus noise.

    Month-to-month contracts, many support tickets and a short tenure raise the churn
    probability, so a model trained on the data has something real to learn. The same seed
    always gives the same rows.
    """
    generator = random.Random(seed)
    customers = []
    for index in range(count):
        tenure_months = generator.randint(1, 72)
        monthly_charges = round(generator.uniform(18.0, 120.0), 2)
        support_tickets = min(12, int(generator.expovariate(0.6)))
        contract = generator.choices(CONTRACT_TYPES, weights=(0.55, 0.25, 0.20))[0]
        has_streaming = generator.random() < 0.4
        score = (
            -1.0
            - 0.05 * tenure_months
            + 0.02 * monthly_charges
            + 0.45 * support_tickets
            + {"month-to-month": 1.3, "one-year": -0.4, "two-year": -1.5}[contract]
            + (0.3 if has_streaming else 0.0)
            + generator.gauss(0.0, 0.5)
        )
        churned = generator.random() < 1.0 / (1.0 + math.exp(-score))
        customers.append(
            {
                "customer_id": f"C{seed:03d}-{index:06d}",
                "tenure_months": str(tenure_months),
                "monthly_charges": f"{monthly_charges:.2f}",
                "support_tickets": str(support_tickets),
                "contract": contract,
                "has_streaming": "yes" if has_streaming else "no",
                "churned": "1" if churned else "0",
            }
        )
    return customers


def write_csv(path: Path | str, rows: Iterable[dict[str, str]]) -> int:
    """Writes rows with the columns they have, in `COLUMNS` order; returns how many rows."""
    rows = list(rows)
    present_columns = [column for column in COLUMNS if any(column in row for row in rows)]
    extra_columns = sorted({key for row in rows for key in row} - set(COLUMNS))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=present_columns + extra_columns)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def read_csv(path: Path | str) -> list[dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def split_rows(
    rows: list[dict[str, str]], holdout_fraction: float, seed: int = 11
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Shuffles deterministically and splits into (training, holdout)."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(
            f"holdout fraction {holdout_fraction} is outside (0, 1); use e.g. 0.2"
        )
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    holdout_size = max(1, int(len(shuffled) * holdout_fraction))
    return shuffled[holdout_size:], shuffled[:holdout_size]
