"""The stand-in's scheduled triggers: active scenarios' time-based triggers fire, an inactive one never."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mlcd.sim.launcher import SimNode
from mlcd.sim.schedule import period_of

dataikuapi = pytest.importorskip("dataikuapi")

KEY = "SCHED"
NIGHTLY = {
    "name": "Nightly scoring",
    "active": False,
    "triggers": [{"id": "nightly", "type": "temporal", "active": True,
                  "params": {"frequency": "Daily", "repeatFrequency": 1, "periodSeconds": 1}}],
    "steps": [{"id": "score", "type": "python", "script": "scripts/ok.py"}],
}  # fmt: skip


def test_period_of_a_trigger() -> None:
    assert period_of({"type": "temporal", "params": {"periodSeconds": 2}}) == 2.0
    assert period_of({"type": "temporal", "params": {"frequency": "Hourly", "repeatFrequency": 2}}) == 7200.0
    assert period_of({"type": "temporal", "active": False, "params": {"periodSeconds": 2}}) is None
    assert period_of({"type": "manual"}) is None


def runs(project: Any) -> list[dict[str, Any]]:
    return [r.run for r in project.get_scenario("NIGHTLY").get_last_runs(limit=50, only_finished_runs=False)]


def wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_scheduled_scenario_runs_only_while_active(
    tmp_path: Path, sim_api_key: str, sim_project_factory: Any
) -> None:
    sim_project_factory(tmp_path / "design", key=KEY, scenarios={"NIGHTLY": NIGHTLY})
    design_node = SimNode.start(role="design", data_dir=tmp_path / "design", api_key=sim_api_key,
                                connections={"warehouse": {}})  # fmt: skip
    auto_node = SimNode.start(role="automation", data_dir=tmp_path / "auto", api_key=sim_api_key,
                              connections={"warehouse": {}})  # fmt: skip
    with design_node, auto_node:
        design = dataikuapi.DSSClient(design_node.url, sim_api_key).get_project(KEY)
        auto = dataikuapi.DSSClient(auto_node.url, sim_api_key)
        design.export_bundle("v1")
        design.download_exported_bundle_archive_to_file("v1", str(tmp_path / "v1.zip"))
        with (tmp_path / "v1.zip").open("rb") as fh:
            auto.create_project_from_bundle_archive(fh)
        project = auto.get_project(KEY)
        project.activate_bundle("v1")  # the scenario's own flag: inactive
        time.sleep(2.5)
        assert runs(project) == []
        project.activate_bundle("v1", scenarios_to_enable={"NIGHTLY": True})
        assert wait_for(lambda: len(runs(project)) >= 1, 10)
        fired = runs(project)[0]
        assert fired["trigger"]["trigger"]["type"] == "temporal"
        project.activate_bundle("v1", scenarios_to_enable={"NIGHTLY": False})
        assert wait_for(lambda: not any(not r.get("result") for r in runs(project)), 10)
        settled = len(runs(project))
        time.sleep(2.5)
        assert len(runs(project)) == settled
