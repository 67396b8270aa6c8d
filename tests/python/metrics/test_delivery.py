"""Delivery metrics from local audit trails (no Jenkins): `mlcd report delivery --audit DIR`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlcd.cli import main
from mlcd.metrics.delivery import compute, records_of

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def line(
    minutes: float, operation: str, outcome: str, env: str | None = None, bundle: str = "b1"
) -> dict[str, object]:
    return {
        "time": (NOW - timedelta(days=2) + timedelta(minutes=minutes)).isoformat(),
        "operation": operation,
        "outcome": outcome,
        "environment": env,
        "bundleId": bundle,
    }


def test_needs_attention_is_restored_by_the_next_successful_deployment() -> None:
    lines = [
        line(0, "bundle", "SUCCESS", bundle="b1"),
        line(5, "deployment", "SUCCEEDED", "prod", "b1"),
        line(60, "bundle", "SUCCESS", bundle="b2"),
        line(70, "record_previous", "SUCCESS", "prod", "b2"),
        line(75, "deployment", "FAILED_NEEDS_ATTENTION", "prod", "b2"),
        line(120, "bundle", "SUCCESS", bundle="b3"),
        line(135, "deployment", "SUCCEEDED", "prod", "b3"),
        line(200, "deployment", "FAILED_UNCHANGED", "prod", "b4"),
    ]
    row = compute(records_of(lines, "CHURN"), end=NOW, days=7)["rows"][0]
    assert row["outcomes"] == {"SUCCEEDED": 2, "FAILED_NEEDS_ATTENTION": 1, "FAILED_UNCHANGED": 1}
    assert row["changeFailureRate"] == 0.5
    assert row["timeToRestoreMedianS"] == 60 * 60.0  # 75 min -> 135 min
    assert row["leadTimeMedianS"] == (5 * 60 + 15 * 60) / 2
    assert row["deploymentsPerWeek"] == 2.0


def test_an_unrestored_failure_and_the_window() -> None:
    lines = [
        line(-60 * 24 * 10, "deployment", "SUCCEEDED", "prod"),  # 12 days ago: outside a 7-day window
        line(10, "deployment", "FAILED_NEEDS_ATTENTION", "prod"),
    ]
    row = compute(records_of(lines, "P"), end=NOW, days=7)["rows"][0]
    assert row["deployments"] == 1 and row["unrestored"] == 1 and row["timeToRestoreMedianS"] is None


def test_report_delivery_from_a_local_trail_per_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for project, outcome in (("CHURN", "SUCCEEDED"), ("FRAUD", "FAILED_ROLLED_BACK")):
        run = tmp_path / "runs" / project
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"project": project}))
        now = datetime.now(timezone.utc)
        records = [
            {"time": (now - timedelta(hours=1)).isoformat(), "operation": "record_previous",
             "outcome": "SUCCESS", "environment": "prod", "bundleId": "x"},
            {"time": now.isoformat(), "operation": "deployment", "outcome": outcome, "environment": "prod",
             "bundleId": "x"},
        ]  # fmt: skip
        (run / "audit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    assert main(["report", "delivery", "--audit", str(tmp_path / "runs"), "--out-dir", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["project", "environment", "deploys", "ok", "per", "week", "failure", "rate",
                                "lead", "time", "restore"]  # fmt: skip
    assert table[1].split()[:6] == ["CHURN", "prod", "1", "1", "0.233", "0%"]
    assert table[2].split()[:6] == ["FRAUD", "prod", "1", "0", "0", "100%"]
    assert table[2].split()[7] == "60m"  # rolled back an hour after the deploy began
    page = (out / "reports" / "delivery" / "index.html").read_text()
    assert '<img src="deployments.svg"' in page and "style=" not in page and "<script" not in page
    svg = (out / "reports" / "delivery" / "deployments.svg").read_text()
    assert "<script" not in svg


def test_no_trail_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "delivery", "--audit", str(tmp_path / "none"), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mlcd report: error: no audit trail at ")
