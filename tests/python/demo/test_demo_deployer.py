"""`make demo-deployer` end to end: scripts/demo_deployer.py must keep working as mlcd changes.

Slow (three releases on four stand-in nodes): excluded from `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parents[3]
KEY_ENVS = ("DSS_DESIGN_API_KEY", "DSS_TEST_API_KEY", "DSS_PROD_API_KEY", "DSS_DEPLOYER_API_KEY")


def _deployments(audit: Path) -> dict[str, str]:
    records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
    return {r["environment"]: r["outcome"] for r in records if r.get("operation") == "deployment"}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_deployer_rolls_back_an_unhealthy_prod_update(tmp_path: Path) -> None:
    out = tmp_path / "demo-out-deployer"
    keys = {env: f"demo-secret-{env.lower()}-{os.getpid()}" for env in KEY_ENVS}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo_deployer.py"), "--out-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=580, env={**os.environ, **keys},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "all three releases behaved as expected" in done.stdout
    assert _deployments(out / "release-1" / "audit.jsonl") == {"test": "SUCCEEDED", "prod": "SUCCEEDED"}
    assert _deployments(out / "release-2" / "audit.jsonl") == {"test": "FAILED_ROLLED_BACK"}
    assert _deployments(out / "release-3" / "audit.jsonl")["prod"] == "FAILED_ROLLED_BACK"
    reports = out / "release-3" / "reports" / "prod"
    unhealthy = etree.parse(str(reports / "deployment-health-CHURN_r3.xml")).getroot()
    assert any(case.find("failure") is not None for case in unhealthy.iter("testcase"))
    assert (reports / "deployment-health-CHURN_r1.xml").is_file()  # the rollback's own health gate
    # no key in anything mlcd printed or wrote (the deployer stand-in's node.json holds the
    # automation nodes' admin keys, as a real deployer's infrastructure settings do)
    written = [p for p in out.rglob("*") if p.is_file() and "nodes" not in p.relative_to(out).parts]
    for key in keys.values():
        assert key not in done.stdout + done.stderr
        for path in written:
            assert key.encode() not in path.read_bytes(), path
