"""Churn model: data schema, feature preparation, scoring and evaluation.

Standard library only: the scenario scripts run under the node's plain Python.
Used by the scenario scripts next to it (which run with cwd = project content
directory) and by `examples/churn/tools/train.py`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# column -> (type, nullable); the order is the CSV header order
SCHEMA: dict[str, tuple[str, bool]] = {
    "customer_id": ("str", False),
    "tenure_months": ("int", False),
    "contract": ("str", False),
    "monthly_charges": ("float", False),
    "total_charges": ("float", True),
    "support_calls": ("int", False),
    "num_products": ("int", False),
    "paperless_billing": ("int", False),
    "churned": ("int", False),
}
CONTRACTS = ("month-to-month", "one-year", "two-year")
# column -> inclusive (low, high) range of valid values
RANGES: dict[str, tuple[float, float]] = {
    "tenure_months": (0, 72),
    "monthly_charges": (10.0, 150.0),
    "total_charges": (0.0, 12000.0),
    "support_calls": (0, 20),
    "num_products": (1, 6),
    "paperless_billing": (0, 1),
    "churned": (0, 1),
}
FEATURES = (
    "tenure_months",
    "monthly_charges_usd",
    "total_charges_usd",
    "support_calls",
    "num_products",
    "paperless_billing",
    "contract_one_year",
    "contract_two_year",
)
SCORE_COLUMNS = ("customer_id", "churn_probability", "churn_predicted", "model_version")


class ScoringError(Exception):
    """A record or a setting the model cannot handle."""


@dataclass
class Model:
    """A logistic-regression model on standardised features."""

    version: str
    features: list[str]
    means: list[float]
    scales: list[float]
    coefficients: list[float]
    intercept: float
    decision_threshold: float
    trained_on: dict[str, Any]

    def probability(self, raw: list[float]) -> float:
        """Churn probability of one raw feature vector (as made by :func:`features`)."""
        z = self.intercept
        for value, mean, scale, coef in zip(raw, self.means, self.scales, self.coefficients, strict=True):
            z += coef * (value - mean) / scale
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def to_json(self) -> dict[str, Any]:
        """The artefact as stored in model/churn_model.json."""
        return {
            "type": "logistic_regression",
            "version": self.version,
            "features": self.features,
            "standardisation": {"means": self.means, "scales": self.scales},
            "coefficients": self.coefficients,
            "intercept": self.intercept,
            "decision_threshold": self.decision_threshold,
            "trained_on": self.trained_on,
        }


def load_model(path: Path) -> Model:
    """Load the model artefact; raise ScoringError if it is not a usable churn model."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScoringError(f"cannot read model artefact {path}: {exc}") from exc
    if data.get("type") != "logistic_regression" or data.get("features") != list(FEATURES):
        raise ScoringError(f"model artefact {path} is not a churn logistic regression on {list(FEATURES)}")
    std = data["standardisation"]
    return Model(
        version=str(data["version"]),
        features=list(data["features"]),
        means=[float(v) for v in std["means"]],
        scales=[float(v) for v in std["scales"]],
        coefficients=[float(v) for v in data["coefficients"]],
        intercept=float(data["intercept"]),
        decision_threshold=float(data.get("decision_threshold", 0.5)),
        trained_on=dict(data.get("trained_on", {})),
    )


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file (values as strings, '' for null)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def fx_rate(variables: dict[str, Any], currency: str) -> float:
    """USD value of one unit of ``currency``, from the project variable ``fx_rates``."""
    rates = variables.get("fx_rates") or {}
    if currency not in rates:
        raise ScoringError(
            f"no exchange rate for currency {currency!r} in project variable fx_rates "
            f"(known: {', '.join(sorted(rates)) or 'none'})"
        )
    return float(rates[currency])


def features(record: dict[str, str], usd_per_unit: float = 1.0) -> list[float]:
    """Raw feature vector of one customer record; charges are converted to USD."""
    tenure = float(record["tenure_months"])
    monthly = float(record["monthly_charges"]) * usd_per_unit
    total_text = record.get("total_charges", "")
    # a brand-new customer has no billing history yet: assume one month at the current price
    total = float(total_text) * usd_per_unit if total_text != "" else monthly * max(tenure, 1.0)
    contract = record["contract"]
    if contract not in CONTRACTS:
        raise ScoringError(f"unknown contract type {contract!r} for customer {record.get('customer_id')}")
    return [
        tenure,
        monthly,
        total,
        float(record["support_calls"]),
        float(record["num_products"]),
        float(record["paperless_billing"]),
        1.0 if contract == "one-year" else 0.0,
        1.0 if contract == "two-year" else 0.0,
    ]


def auc(labels: list[int], scores: list[float]) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties counted as one half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes in the labels")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + 1 + j) / 2.0  # average 1-based rank of the tied block
        rank_sum += mid_rank * sum(label for _, label in pairs[i:j])
        i = j
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def load_variables() -> dict[str, Any]:
    """Project variables: the file named by MLCD_VARIABLES, else ./variables.json (standard + local)."""
    path = os.environ.get("MLCD_VARIABLES")
    if path:
        data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        return data
    raw = json.loads(Path("variables.json").read_text(encoding="utf-8"))
    return {**raw.get("standard", {}), **raw.get("local", {})}


def report(outcome: str, message: str) -> None:
    """Tell the scenario runner the step's outcome (MLCD_STEP_RESULT) and log it."""
    print(f"{outcome}: {message}", flush=True)
    path = os.environ.get("MLCD_STEP_RESULT")
    if path:
        Path(path).write_text(json.dumps({"outcome": outcome, "message": message}), encoding="utf-8")
