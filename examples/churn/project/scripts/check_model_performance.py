"""TEST_MODEL_PERFORMANCE: AUC of the bundled model on the holdout set must reach auc_threshold.

Run by the scenario runner with cwd = project content directory; the threshold
is the project variable ``auc_threshold``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the project content directory clean on the node

from churn_model import ScoringError, auc, features, load_model, load_variables, read_rows, report  # noqa: E402

MODEL = Path("model/churn_model.json")
HOLDOUT = Path("data/customers_holdout.csv")


def main() -> int:
    """Score the holdout set and compare its AUC with the threshold."""
    variables = load_variables()
    if "auc_threshold" not in variables:
        report("FAILED", "project variable auc_threshold is not set: add it to the standard variables")
        return 1
    threshold = float(variables["auc_threshold"])
    try:
        model = load_model(MODEL)
        _, rows = read_rows(HOLDOUT)
        labels = [int(row["churned"]) for row in rows]
        scores = [model.probability(features(row)) for row in rows]
    except (OSError, ScoringError, KeyError, ValueError) as exc:
        report("FAILED", f"model performance: cannot evaluate: {exc}")
        return 1
    value = auc(labels, scores)
    print(f"model {model.version}: AUC {value:.4f} on {len(rows)} holdout rows, threshold {threshold:.4f}")
    if value < threshold:
        report(
            "FAILED", f"model {model.version}: holdout AUC {value:.3f} is below auc_threshold {threshold:.3f}"
        )
        return 1
    report("SUCCESS", f"model {model.version}: holdout AUC {value:.3f} >= auc_threshold {threshold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
