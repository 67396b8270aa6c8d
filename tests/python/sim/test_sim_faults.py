"""Fault injection and request statistics of the stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from mlcd.sim.faults import FaultPlanError, FaultState
from mlcd.sim.launcher import SimNode
from support.simclient import Api

KEY = "SIMPRJ"


def _statuses(api: Api, n: int) -> list[int]:
    return [api.call("GET", f"/projects/{KEY}/").status_code for _ in range(n)]


def test_seeded_plan_replays_the_same_faults(sim_design: SimNode) -> None:
    api = Api(sim_design)
    plan = {
        "seed": 7,
        "rules": [{"method": "GET", "path": "/projects/SIMPRJ/?$", "rate": 0.5, "status": 503}],
    }
    sim_design.set_faults(plan)
    first = _statuses(api, 24)
    sim_design.set_faults(plan)
    second = _statuses(api, 24)
    assert first == second
    assert set(first) == {200, 503}
    resp = api.call("GET", "/projects/")  # not matched by the rule
    assert resp.status_code == 200
    sim_design.clear_faults()
    assert set(_statuses(api, 5)) == {200}


def test_one_shot_failure_then_success_with_dss_error_body(sim_design: SimNode) -> None:
    api = Api(sim_design)
    sim_design.set_faults({"seed": 1, "rules": [{"path": "/variables/", "status": 429, "times": 1}]})
    first = api.call("GET", f"/projects/{KEY}/variables/")
    assert first.status_code == 429
    assert first.json()["errorType"] and first.json()["code"] == "ERR_SIM_INJECTED_FAULT"
    assert api.call("GET", f"/projects/{KEY}/variables/").status_code == 200


def test_connection_reset_before_answering(sim_design: SimNode) -> None:
    api = Api(sim_design)
    sim_design.set_faults({"seed": 1, "rules": [{"path": "/instance-info", "reset": True, "times": 1}]})
    with pytest.raises(requests.ConnectionError):
        api.call("GET", "/instance-info")
    assert api.json("GET", "/instance-info")["nodeType"] == "DESIGN"
    assert not [line for line in sim_design.stderr_lines if "Traceback" in line or "rror" in line]


def test_connection_dropped_mid_body(sim_design: SimNode, tmp_path: Path) -> None:
    api = Api(sim_design)
    full = api.export(KEY, "v1", tmp_path / "v1.zip").read_bytes()
    assert len(full) > 1000
    sim_design.set_faults({"seed": 1, "rules": [{"path": "/archive$", "drop_after": 500, "times": 1}]})
    resp = api.call("GET", f"/projects/{KEY}/bundles/exported/v1/archive", stream=True)
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) == len(full)
    received = b""
    with pytest.raises(requests.exceptions.RequestException):
        for chunk in resp.iter_content(100):
            received += chunk
    assert received == full[:500]
    again = api.call("GET", f"/projects/{KEY}/bundles/exported/v1/archive")
    assert again.content == full
    assert not [line for line in sim_design.stderr_lines if "Traceback" in line or "rror" in line]


def test_latency_past_client_timeout(sim_design: SimNode) -> None:
    api = Api(sim_design)
    sim_design.set_faults({"seed": 1, "rules": [{"path": "/auth/info", "latency": 1.5, "times": 1}]})
    with pytest.raises(requests.Timeout):
        api.call("GET", "/auth/info", timeout=0.3)
    assert api.json("GET", "/auth/info")["groups"]


def test_stats_count_requests_per_route_template(sim_design: SimNode) -> None:
    api = Api(sim_design)
    sim_design.reset_stats()
    api.call("GET", "/projects/")
    api.call("GET", f"/projects/{KEY}/scenarios/")
    Api(sim_design, "/dip/publicapi").call("GET", f"/projects/{KEY}/scenarios/")
    stats = sim_design.stats()
    assert stats["routes"]["GET /projects/<key>/scenarios/"] == 2
    assert stats["routes"]["GET /projects/"] == 1
    assert stats["total"] == 3


def test_faults_from_file_at_start(tmp_path: Path, sim_api_key: str, sim_project_factory) -> None:  # type: ignore[no-untyped-def]
    sim_project_factory(tmp_path / "d")
    plan = {"seed": 3, "rules": [{"path": "/instance-info", "status": 502, "times": 2}]}
    with SimNode.start("design", tmp_path / "d", api_key=sim_api_key, faults=plan) as node:
        api = Api(node)
        assert _statuses_of(api, "/instance-info", 3) == [502, 502, 200]
        faults = requests.get(node.url + "/__sim__/faults", auth=(sim_api_key, ""), timeout=10).json()
        assert faults["rules"][0]["fired"] == 2


def _statuses_of(api: Api, path: str, n: int) -> list[int]:
    return [api.call("GET", path).status_code for _ in range(n)]


def test_invalid_plans_are_refused(sim_design: SimNode) -> None:
    resp = requests.put(
        sim_design.url + "/__sim__/faults",
        data=json.dumps({"rules": [{"path": "("}]}),
        auth=(sim_design.api_key, ""),
        timeout=10,
    )
    assert resp.status_code == 400
    assert "regex" in resp.json()["message"]
    state = FaultState()
    for bad in ({"rules": [{"rate": 2}]}, {"rules": [{"bogus": 1}]}, {"seed": "x"}, []):
        with pytest.raises(FaultPlanError):
            state.set_plan(bad)


def test_fault_after_processing_loses_the_answer_not_the_work(sim_design: SimNode) -> None:
    api = Api(sim_design)
    sim_design.set_faults(
        {
            "seed": 1,
            "rules": [{"method": "PUT", "path": "/bundles/exported/", "status": 502, "after": True}],
        }
    )
    assert api.call("PUT", f"/projects/{KEY}/bundles/exported/v1").status_code == 502
    sim_design.set_faults(
        {
            "seed": 1,
            "rules": [{"method": "PUT", "path": "/bundles/exported/", "reset": True, "after": True}],
        }
    )
    with pytest.raises(requests.ConnectionError):
        api.call("PUT", f"/projects/{KEY}/bundles/exported/v2")
    sim_design.clear_faults()
    listed = api.json("GET", f"/projects/{KEY}/bundles/exported")["bundles"]
    assert [b["bundleId"] for b in listed] == ["v1", "v2"]


def test_fault_before_processing_changes_nothing(sim_design: SimNode) -> None:
    api = Api(sim_design)
    sim_design.set_faults(
        {"seed": 1, "rules": [{"method": "PUT", "path": "/bundles/exported/", "status": 503}]}
    )
    assert api.call("PUT", f"/projects/{KEY}/bundles/exported/v1").status_code == 503
    sim_design.clear_faults()
    assert api.json("GET", f"/projects/{KEY}/bundles/exported")["bundles"] == []
