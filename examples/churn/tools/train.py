"""Train the churn logistic regression (pure Python, Newton-Raphson / IRLS with a small ridge).

    python examples/churn/tools/train.py [--project DIR] [--out FILE] [--version V]
                                         [--shuffle-labels --seed N]

Reads data/customers_train.csv of the project folder and writes the model
artefact (default: model/churn_model.json). ``--shuffle-labels`` trains on
labels permuted with ``--seed``: a model that learned nothing, as a broken
training pipeline would produce (the demo's degraded release).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent / "project"
sys.path.insert(0, str(PROJECT / "scripts"))

from churn_model import FEATURES, Model, features, read_rows  # noqa: E402


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve matrix @ x = vector by Gaussian elimination with partial pivoting."""
    n = len(vector)
    a = [[*row, vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            for c in range(col, n + 1):
                a[r][c] -= factor * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def fit(rows: list[list[float]], labels: list[int], ridge: float = 1e-3, iterations: int = 25) -> Model:
    """Fit a logistic regression on standardised features; returns the model (version 'untrained')."""
    n, k = len(rows), len(rows[0])
    means = [sum(r[j] for r in rows) / n for j in range(k)]
    scales = [max((sum((r[j] - means[j]) ** 2 for r in rows) / n) ** 0.5, 1e-9) for j in range(k)]
    x = [[1.0] + [(r[j] - means[j]) / scales[j] for j in range(k)] for r in rows]
    w = [0.0] * (k + 1)
    for _ in range(iterations):
        model = Model("", list(FEATURES), [0.0] * k, [1.0] * k, w[1:], w[0], 0.5, {})
        grad = [0.0] * (k + 1)
        hess = [[0.0] * (k + 1) for _ in range(k + 1)]
        for xi, yi in zip(x, labels, strict=True):
            p = model.probability(xi[1:])
            weight = p * (1 - p)
            for a in range(k + 1):
                grad[a] += (yi - p) * xi[a]
                row = hess[a]
                wa = weight * xi[a]
                for b in range(a, k + 1):
                    row[b] += wa * xi[b]
        for a in range(k + 1):
            grad[a] -= ridge * n * w[a] if a else 0.0
            hess[a][a] += ridge * n if a else 0.0
            for b in range(a):
                hess[a][b] = hess[b][a]
        step = _solve(hess, grad)
        w = [wi + si for wi, si in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-8:
            break
    return Model("untrained", list(FEATURES), means, scales, w[1:], w[0], 0.5, {})


def train(project: Path, version: str, shuffle_seed: int | None) -> Model:
    """Train on the project's training set; shuffle the labels first if a seed is given."""
    _, records = read_rows(project / "data" / "customers_train.csv")
    rows = [features(r) for r in records]
    labels = [int(r["churned"]) for r in records]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(labels)
    model = fit(rows, labels)
    model.version = version
    model.means = [round(v, 10) for v in model.means]
    model.scales = [round(v, 10) for v in model.scales]
    model.coefficients = [round(v, 10) for v in model.coefficients]
    model.intercept = round(model.intercept, 10)
    model.trained_on = {
        "dataset": "data/customers_train.csv",
        "rows": len(records),
        "positive_rate": round(sum(labels) / len(labels), 4),
        "labels_shuffled_with_seed": shuffle_seed,
    }
    return model


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=PROJECT, help="project folder (default: example)")
    parser.add_argument("--out", type=Path, help="artefact (default: <project>/model/churn_model.json)")
    parser.add_argument("--version", default="1.0.0", help="model version recorded in the artefact")
    parser.add_argument("--shuffle-labels", action="store_true", help="train on permuted labels")
    parser.add_argument("--seed", type=int, default=13, help="seed of the label permutation")
    args = parser.parse_args()
    model = train(args.project, args.version, args.seed if args.shuffle_labels else None)
    out = args.out or args.project / "model" / "churn_model.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote model {model.version} to {out}")


if __name__ == "__main__":
    main()
