"""`make demo` end to end: scripts/demo.py must keep working as mlcd changes.

Slow (three full releases on three stand-in nodes): excluded from `make test`,
run with `pytest -m slow tests/python/demo`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from lxml import etree

from mlcd.locking import default_lock_dir

REPO = Path(__file__).resolve().parents[3]
KEY_ENVS = ("DSS_DESIGN_API_KEY", "DSS_TEST_API_KEY", "DSS_PROD_API_KEY")


def _deployments(audit: Path) -> dict[str, str]:
    records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    return {r["environment"]: r["outcome"] for r in records if r.get("operation") == "deployment"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_three_releases_and_leaves_reports_and_no_processes(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    lock_dir = default_lock_dir()
    locks_before = {p.name: p.stat().st_mtime_ns for p in lock_dir.glob("CHURN-*.lock")}
    keys = {env: f"demo-secret-{env.lower()}-{os.getpid()}" for env in KEY_ENVS}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--out-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=580, env={**os.environ, **keys},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "all three releases behaved as expected" in done.stdout
    # it ends with the delivery metrics of its releases (mlcd report delivery over their audit trails)
    metrics = json.loads((out / "delivery" / "reports" / "delivery" / "delivery.json").read_text())
    prod = next(r for r in metrics["rows"] if r["environment"] == "prod")
    assert prod["outcomes"] == {"FAILED_ROLLED_BACK": 1, "SUCCEEDED": 1} and prod["changeFailureRate"] == 0.5
    assert "Delivery metrics of these releases" in done.stdout

    # the reports a Jenkins user reads, per release
    tests_xml = out / "release-1" / "reports" / "test" / "tests.xml"
    suite = etree.parse(str(tests_xml)).getroot()
    names = {case.get("name", "") for case in suite.iter("testcase")}
    assert any("TEST_MODEL_PERFORMANCE" in n for n in names) and any("TEST_DATA_QUALITY" in n for n in names)
    assert (out / "release-1" / "reports" / "prod" / "smoke.xml").is_file()
    assert list((out / "release-1" / "reports").glob("*/report.html"))
    failed = etree.parse(str(out / "release-2" / "reports" / "test" / "tests.xml")).getroot()
    assert any(case.find("failure") is not None for case in failed.iter("testcase"))

    # the audit trail's success indicator per environment
    assert _deployments(out / "release-1" / "audit.jsonl") == {"test": "SUCCEEDED", "prod": "SUCCEEDED"}
    assert _deployments(out / "release-2" / "audit.jsonl") == {"test": "FAILED_ROLLED_BACK"}
    assert _deployments(out / "release-3" / "audit.jsonl").get("prod") == "FAILED_ROLLED_BACK"
    assert "prod" not in _deployments(out / "release-2" / "audit.jsonl")

    # no key in anything the demo printed or wrote, no lock outside it, no process left behind
    for key in keys.values():
        assert key not in done.stdout + done.stderr
        for path in out.rglob("*"):
            assert not path.is_file() or key.encode() not in path.read_bytes(), path
    assert {p.name: p.stat().st_mtime_ns for p in lock_dir.glob("CHURN-*.lock")} == locks_before
    assert sorted(p.name for p in (out / "locks").iterdir()) == ["CHURN-prod.lock", "CHURN-test.lock"]
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(str(out) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []
