"""The churn project on a real stand-in design node: its scenarios run there as DSS would run them.

Integration test over loopback: the project folder is put on a stand-in node,
the scenarios are triggered through the DSS API and awaited with mlcd's client.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcd.dss.node import DSSNode
from mlcd.dss.waiter import ScenarioResult, ScenarioWaiter
from mlcd.sim.launcher import SimNode

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "churn"


@pytest.fixture
def design(tmp_path: Path) -> Iterator[tuple[SimNode, Path]]:
    """A stand-in design node holding a copy of the churn project."""
    data = tmp_path / "design"
    project = data / "projects" / "CHURN"
    shutil.copytree(EXAMPLE / "project", project, ignore=shutil.ignore_patterns("__pycache__"))
    with SimNode.start(
        role="design",
        data_dir=data,
        api_key="churn-test-key-1234",
        connections={"warehouse": {"type": "PostgreSQL"}},
    ) as node:
        yield node, project


def _run(node: SimNode, *sids: str) -> dict[str, ScenarioResult]:
    waiter = ScenarioWaiter(DSSNode(node.url, node.api_key, name="design"), "CHURN", tick=0.2)
    results = waiter.wait(waiter.start_all(list(sids), deadline_s=120))
    return {r.scenario_id: r for r in results}


def test_all_three_scenarios_pass_on_the_node(design: tuple[SimNode, Path]) -> None:
    node, _ = design
    results = _run(node, "TEST_DATA_QUALITY", "TEST_MODEL_PERFORMANCE", "TEST_SMOKE")
    assert {sid: r.outcome for sid, r in results.items()} == {
        "TEST_DATA_QUALITY": "SUCCESS",
        "TEST_MODEL_PERFORMANCE": "SUCCESS",
        "TEST_SMOKE": "SUCCESS",
    }
    smoke = results["TEST_SMOKE"]
    assert smoke.run_id is not None
    log = DSSNode(node.url, node.api_key, name="design").get_run_log("CHURN", "TEST_SMOKE", smoke.run_id)
    assert "customer_id,churn_probability,churn_predicted,model_version" in log


def test_a_degraded_model_fails_the_performance_scenario_with_its_auc(design: tuple[SimNode, Path]) -> None:
    node, project = design
    subprocess.run(
        [sys.executable, str(EXAMPLE / "tools" / "train.py"), "--project", str(project),
         "--shuffle-labels", "--seed", "13", "--version", "1.1.0"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    result = _run(node, "TEST_MODEL_PERFORMANCE")["TEST_MODEL_PERFORMANCE"]
    assert result.outcome == "FAILED"
    assert result.error_message is not None
    assert "model 1.1.0: holdout AUC" in result.error_message
    assert "below auc_threshold 0.780" in result.error_message
