"""The churn example project: its scenarios do real work under the stand-in's step contract.

Each test copies examples/churn/project, then runs a scenario's python steps the
way a node does (docs/design.md §4): ``python <script>`` with cwd = the project
content directory and MLCD_VARIABLES / MLCD_CONNECTIONS / MLCD_STEP_RESULT set.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "churn"
PROJECT = EXAMPLE / "project"
SCENARIOS = ("TEST_DATA_QUALITY", "TEST_MODEL_PERFORMANCE", "TEST_SMOKE")
Table = tuple[list[str], list[dict[str, str]]]


@dataclass
class StepRun:
    """What a node would record for one scenario run."""

    outcome: str
    message: str
    log: str


def run_scenario(
    project: Path, scenario_id: str, local: dict[str, Any] | None = None, tmp: Path | None = None
) -> StepRun:
    """Run every python step of ``scenario_id`` like a node; stop at the first failure."""
    tmp = tmp or project.parent
    definition = json.loads((project / "scenarios" / f"{scenario_id}.json").read_text())
    raw = json.loads((project / "variables.json").read_text())
    variables_file = tmp / "variables.effective.json"
    variables_file.write_text(json.dumps({**raw["standard"], **(local or {})}))
    connections_file = tmp / "connections.json"
    connections_file.write_text(json.dumps({"warehouse_test": {"type": "PostgreSQL"}}))
    log: list[str] = []
    outcome, message = "SUCCESS", ""
    for step in definition["steps"]:
        if step["type"] != "python":
            continue
        result_file = tmp / f"result-{step['id']}.json"
        result_file.unlink(missing_ok=True)
        env = {
            "PATH": "/usr/bin:/bin",
            "MLCD_PROJECT_KEY": "CHURN",
            "MLCD_SCENARIO_ID": scenario_id,
            "MLCD_NODE_NAME": "test",
            "MLCD_VARIABLES": str(variables_file),
            "MLCD_CONNECTIONS": str(connections_file),
            "MLCD_STEP_RESULT": str(result_file),
        }
        proc = subprocess.run(
            [sys.executable, step["script"]], cwd=project, env=env, capture_output=True, text=True, timeout=60
        )
        log.append(proc.stdout + proc.stderr)
        written = json.loads(result_file.read_text()) if result_file.exists() else {}
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            return StepRun("FAILED", written.get("message") or (lines[-1] if lines else ""), "".join(log))
        outcome, message = written.get("outcome", "SUCCESS"), written.get("message", "")
    return StepRun(outcome, message, "".join(log))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the example project folder."""
    dest = tmp_path / "CHURN"
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_project_declares_the_three_test_scenarios() -> None:
    meta = json.loads((PROJECT / "project.json").read_text())
    assert meta["projectKey"] == "CHURN"
    assert "auc_threshold" in json.loads((PROJECT / "variables.json").read_text())["standard"]
    found = sorted(p.stem for p in (PROJECT / "scenarios").glob("*.json"))
    assert found == sorted([*SCENARIOS, "NIGHTLY_SCORING"])  # plus the scheduled scoring, not a test
    for sid in SCENARIOS:
        definition = json.loads((PROJECT / "scenarios" / f"{sid}.json").read_text())
        assert definition["id"] == sid and definition["markedAsTest"] is True
        for step in definition["steps"]:
            assert step["type"] != "python" or (PROJECT / step["script"]).is_file()


def test_data_quality_passes_on_the_shipped_datasets(project: Path) -> None:
    run = run_scenario(project, "TEST_DATA_QUALITY")
    assert run.outcome == "SUCCESS", run.log
    assert "2400 rows" in run.log and "600 rows" in run.log


def _rewrite_holdout(project: Path, change: Any) -> None:
    path = project / "data" / "customers_holdout.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    header, rows = change(header, rows)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _null_contracts(header: list[str], rows: list[dict[str, str]]) -> Table:
    for row in rows[:3]:
        row["contract"] = ""
    return header, rows


def _impossible_tenure(header: list[str], rows: list[dict[str, str]]) -> Table:
    rows[0]["tenure_months"] = "999"
    return header, rows


def _many_missing_totals(header: list[str], rows: list[dict[str, str]]) -> Table:
    for row in rows[:120]:
        row["total_charges"] = ""
    return header, rows


def _dropped_column(header: list[str], rows: list[dict[str, str]]) -> Table:
    return [c for c in header if c != "support_calls"], rows


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_null_contracts, "column contract has 3 nulls"),
        (_impossible_tenure, "column tenure_months has 1 values outside"),
        (_many_missing_totals, "column total_charges null rate"),
        (_dropped_column, "schema mismatch (missing: ['support_calls']"),
    ],
)
def test_data_quality_fails_and_names_the_problem(project: Path, change: Any, expected: str) -> None:
    _rewrite_holdout(project, change)
    run = run_scenario(project, "TEST_DATA_QUALITY")
    assert run.outcome == "FAILED"
    assert expected in run.message
    assert "customers_holdout.csv" in run.message


def test_model_performance_passes_for_the_bundled_model(project: Path) -> None:
    run = run_scenario(project, "TEST_MODEL_PERFORMANCE")
    assert run.outcome == "SUCCESS", run.log
    assert ">= auc_threshold 0.780" in run.message


def test_model_performance_fails_for_a_model_trained_on_shuffled_labels(project: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLE / "tools" / "train.py"), "--project", str(project),
         "--shuffle-labels", "--seed", "13", "--version", "1.1.0"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    run = run_scenario(project, "TEST_MODEL_PERFORMANCE")
    assert run.outcome == "FAILED"
    assert "model 1.1.0: holdout AUC" in run.message and "is below auc_threshold 0.780" in run.message


def test_model_performance_threshold_comes_from_the_project_variables(project: Path) -> None:
    assert run_scenario(project, "TEST_MODEL_PERFORMANCE", local={"auc_threshold": 0.5}).outcome == "SUCCESS"
    run = run_scenario(project, "TEST_MODEL_PERFORMANCE", local={"auc_threshold": 0.99})
    assert run.outcome == "FAILED" and "below auc_threshold 0.990" in run.message


def test_smoke_scores_records_with_the_documented_output_schema(project: Path) -> None:
    run = run_scenario(project, "TEST_SMOKE")
    assert run.outcome == "SUCCESS", run.log
    table = run.log[run.log.index("customer_id,") :]
    rows = list(csv.DictReader(io.StringIO(table.split("\nSUCCESS")[0])))
    assert len(rows) == 5
    assert list(rows[0]) == ["customer_id", "churn_probability", "churn_predicted", "model_version"]
    for row in rows:
        assert 0.0 <= float(row["churn_probability"]) <= 1.0
        assert row["churn_predicted"] == str(int(float(row["churn_probability"]) >= 0.5))
        assert row["model_version"] == "1.0.0"


def test_smoke_converts_a_node_local_currency(project: Path) -> None:
    usd = run_scenario(project, "TEST_SMOKE")
    eur = run_scenario(project, "TEST_SMOKE", local={"currency": "EUR"})
    assert eur.outcome == "SUCCESS", eur.log
    assert "in EUR (1 EUR = 1.08 USD)" in eur.log
    assert usd.log.split("customer_id,")[1] != eur.log.split("customer_id,")[1]  # charges were converted


def test_smoke_fails_when_the_node_currency_has_no_exchange_rate(project: Path) -> None:
    run = run_scenario(project, "TEST_SMOKE", local={"currency": "EUR", "fx_rates": {"USD": 1.0}})
    assert run.outcome == "FAILED"
    assert "no exchange rate for currency 'EUR'" in run.message


def test_generator_reproduces_the_committed_datasets(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLE / "tools" / "generate_data.py"), "--project", str(tmp_path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    for name in ("customers_train.csv", "customers_holdout.csv", "smoke_records.csv"):
        assert (tmp_path / "data" / name).read_bytes() == (PROJECT / "data" / name).read_bytes(), name
    assert sum(p.stat().st_size for p in (PROJECT / "data").iterdir()) < 500_000


def test_training_reproduces_the_committed_model(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.json"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "tools" / "train.py"), "--project", str(project), "--out", str(out)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert json.loads(out.read_text()) == json.loads((PROJECT / "model" / "churn_model.json").read_text())
