"""TEST_SMOKE: score a handful of records on this node and check the output schema.

Run by the scenario runner with cwd = project content directory. The records'
charges are in the node's currency (project variable ``currency``, usually a
local variable on the automation node), converted with ``fx_rates``.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the project content directory clean on the node

from churn_model import (  # noqa: E402
    SCORE_COLUMNS,
    ScoringError,
    features,
    fx_rate,
    load_model,
    load_variables,
    read_rows,
    report,
)

MODEL = Path("model/churn_model.json")
SAMPLE = Path("data/smoke_records.csv")


def score_records(limit: int) -> list[dict[str, object]]:
    """Score the first ``limit`` sample records; one output row each."""
    variables = load_variables()
    currency = str(variables.get("currency", "USD"))
    rate = fx_rate(variables, currency)
    model = load_model(MODEL)
    _, rows = read_rows(SAMPLE)
    out: list[dict[str, object]] = []
    for row in rows[:limit]:
        p = model.probability(features(row, rate))
        out.append(
            {
                "customer_id": row["customer_id"],
                "churn_probability": round(p, 6),
                "churn_predicted": int(p >= model.decision_threshold),
                "model_version": model.version,
            }
        )
    print(f"scored {len(out)} records in {currency} (1 {currency} = {rate} USD) with model {model.version}")
    return out


def schema_problems(rows: list[dict[str, object]]) -> list[str]:
    """What is wrong with the scoring output, if anything."""
    problems: list[str] = []
    if not rows:
        problems.append("no records scored")
    for row in rows:
        if tuple(row) != SCORE_COLUMNS:
            problems.append(f"output columns {list(row)} != {list(SCORE_COLUMNS)}")
            break
        p = row["churn_probability"]
        if not isinstance(p, float) or not 0.0 <= p <= 1.0:
            problems.append(f"churn_probability {p!r} of {row['customer_id']} is not in [0, 1]")
        if row["churn_predicted"] not in (0, 1):
            problems.append(f"churn_predicted of {row['customer_id']} is not 0 or 1")
    return problems


def main() -> int:
    """Score, print the output as CSV, check its schema."""
    limit = int(load_variables().get("smoke_sample_size", 5))
    try:
        rows = score_records(limit)
    except (OSError, ScoringError, KeyError, ValueError) as exc:
        report("FAILED", f"smoke scoring failed: {exc}")
        return 1
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(SCORE_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    print(buf.getvalue(), end="")
    problems = schema_problems(rows)
    if problems:
        report("FAILED", f"smoke output: {problems[0]}")
        return 1
    report("SUCCESS", f"smoke: {len(rows)} records scored, output schema {list(SCORE_COLUMNS)} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
