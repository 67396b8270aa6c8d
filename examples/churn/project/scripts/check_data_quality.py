"""TEST_DATA_QUALITY: schema, null rates and value ranges of the churn datasets.

Run by the scenario runner with cwd = project content directory. Every problem
found is printed; the step fails if there is at least one.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the project content directory clean on the node

from churn_model import CONTRACTS, RANGES, SCHEMA, load_variables, read_rows, report  # noqa: E402

DATASETS = (Path("data/customers_train.csv"), Path("data/customers_holdout.csv"))


def check_dataset(path: Path, max_null_rate: float) -> list[str]:
    """Every data-quality problem of one dataset, as one line each."""
    if not path.is_file():
        return [f"{path}: dataset missing"]
    header, rows = read_rows(path)
    if header != list(SCHEMA):
        missing = [c for c in SCHEMA if c not in header]
        extra = [c for c in header if c not in SCHEMA]
        return [f"{path}: schema mismatch (missing: {missing or 'none'}, unexpected: {extra or 'none'})"]
    if not rows:
        return [f"{path}: no rows"]
    problems: list[str] = []
    ids = [row["customer_id"] for row in rows]
    if len(set(ids)) != len(ids):
        problems.append(f"{path}: {len(ids) - len(set(ids))} duplicate customer_id values")
    for column, (kind, nullable) in SCHEMA.items():
        values = [row[column] for row in rows]
        nulls = sum(1 for v in values if v == "")
        rate = nulls / len(rows)
        if nulls and not nullable:
            problems.append(f"{path}: column {column} has {nulls} nulls but is not nullable")
        elif rate > max_null_rate:
            problems.append(
                f"{path}: column {column} null rate {rate:.2%} > max_null_rate {max_null_rate:.2%}"
            )
        bad_type = 0
        out_of_range = 0
        low, high = RANGES.get(column, (float("-inf"), float("inf")))
        for v in values:
            if v == "" or kind == "str":
                continue
            try:
                number = int(v) if kind == "int" else float(v)
            except ValueError:
                bad_type += 1
                continue
            if not low <= number <= high:
                out_of_range += 1
        if bad_type:
            problems.append(f"{path}: column {column} has {bad_type} values that are not {kind}")
        if out_of_range:
            problems.append(f"{path}: column {column} has {out_of_range} values outside [{low}, {high}]")
    bad_contracts = sum(1 for row in rows if row["contract"] not in CONTRACTS)
    if bad_contracts:
        problems.append(f"{path}: {bad_contracts} rows with a contract not in {list(CONTRACTS)}")
    print(f"{path}: {len(rows)} rows, {len(header)} columns checked")
    return problems


def main() -> int:
    """Check every dataset; report FAILED with the first problem if any."""
    variables = load_variables()
    max_null_rate = float(variables.get("max_null_rate", 0.0))
    problems: list[str] = []
    for path in DATASETS:
        problems.extend(check_dataset(path, max_null_rate))
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        report("FAILED", f"data quality: {problems[0]}{more}")
        return 1
    report("SUCCESS", f"data quality: {len(DATASETS)} datasets pass schema, null-rate and range checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
