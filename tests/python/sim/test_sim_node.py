"""The stand-in as a process: start-up, auth, DSS-shaped errors, stop, restart."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mlcd.sim.launcher import SimNode
from support.simclient import Api

NOT_FOUND = "com.dataiku.dip.server.controllers.NotFoundException"


def test_ready_line_port_zero_and_instance_info(sim_design: SimNode) -> None:
    assert sim_design.url.startswith("http://127.0.0.1:")
    assert sim_design.port > 0
    for prefix in ("/public/api", "/dip/publicapi"):
        info = Api(sim_design, prefix).json("GET", "/instance-info")
        assert info["nodeType"] == "DESIGN"
        assert info["nodeName"] == "design"


def test_automation_node_type(sim_automation: SimNode) -> None:
    info = Api(sim_automation).json("GET", "/instance-info")
    assert info["nodeType"] == "AUTOMATION"
    assert info["nodeName"] == "auto-test"


def test_refuses_to_start_without_api_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLCD_SIM_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlcd", "sim", "serve", "--role", "design", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "MLCD_SIM_API_KEY" in lines[0]
    assert "Traceback" not in proc.stderr


def test_sim_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlcd", "sim", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "serve" in proc.stdout


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b"wrong-key:").decode(),
        "Bearer wrong-key",
        "Basic !!!notbase64",
    ],
)
def test_bad_or_missing_key_is_401_dss_json(sim_design: SimNode, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    resp = requests.get(sim_design.url + "/public/api/projects/", headers=headers, timeout=10)
    assert resp.status_code == 401
    body = resp.json()
    assert body["errorType"].startswith("com.dataiku.")
    assert body["message"]
    assert sim_design.api_key not in resp.text


def test_accepted_auth_forms(sim_design: SimNode) -> None:
    key = sim_design.api_key
    forms = [
        "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Basic " + base64.b64encode(f":{key}".encode()).decode(),
        f"Bearer {key}",
    ]
    for header in forms:
        resp = requests.get(
            sim_design.url + "/dip/publicapi/projects/", headers={"Authorization": header}, timeout=10
        )
        assert resp.status_code == 200, header
        assert [p["projectKey"] for p in resp.json()] == ["SIMPRJ"]


def test_errors_are_dss_shaped(sim_design: SimNode) -> None:
    api = Api(sim_design)
    resp = api.call("GET", "/projects/NOPE/")
    assert resp.status_code == 401  # as a real DSS 14 node answers an unknown project (dialect: 404)
    assert resp.json()["errorType"] == "com.dataiku.dip.exceptions.UnauthorizedException"
    assert resp.json()["message"] == "Failed to read project permissions"
    resp = api.call("GET", "/projects/SIMPRJ/bundles/exported/no_such_bundle/archive")
    assert resp.status_code == 404
    assert resp.json()["code"] == "ERR_BUNDLE_NOT_FOUND"
    resp = api.call("GET", "/no/such/endpoint")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "detailedMessage" in resp.json()
    resp = api.call("PUT", "/projects/SIMPRJ/variables/", data="{not json")
    assert resp.status_code == 400
    assert resp.json()["code"] == "ERR_INVALID_JSON"
    resp = api.call("GET", "/projects/SIMPRJ/scenarios/NOPE/light")
    assert resp.status_code == 404


def test_sigterm_stops_cleanly_and_restart_keeps_state(sim_design: SimNode, tmp_path: Path) -> None:
    api = Api(sim_design)
    api.json("PUT", "/projects/SIMPRJ/bundles/exported/v1", params={"releaseNotes": "first"})
    pid = sim_design.pid
    sim_design.restart()
    assert sim_design.pid != pid
    bundles = Api(sim_design).json("GET", "/projects/SIMPRJ/bundles/exported")["bundles"]
    assert [b["bundleId"] for b in bundles] == ["v1"]
    assert bundles[0]["releaseNotes"] == "first"
    sim_design.stop()
    assert sim_design.returncode == 0
    sim_design.stop()  # idempotent


def test_sigint_also_stops_cleanly(sim_automation: SimNode) -> None:
    pid = sim_automation.pid
    assert pid is not None
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while sim_automation.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim_automation.returncode == 0
    assert not [line for line in sim_automation.stderr_lines if "Traceback" in line]


def test_api_key_is_written_nowhere(sim_design: SimNode) -> None:
    api = Api(sim_design)
    api.json("PUT", "/projects/SIMPRJ/bundles/exported/v1")
    fire = api.json("POST", "/projects/SIMPRJ/scenarios/TEST_FAIL/run", json={})
    api.json("GET", "/projects/SIMPRJ/scenarios/TEST_FAIL/get-last-runs")
    assert api.call("GET", "/projects/", auth=("wrong", "")).status_code == 401
    deadline = time.monotonic() + 60
    while (
        not api.json(
            "GET",
            "/projects/SIMPRJ/scenarios/TEST_FAIL/get-run-for-trigger",
            params={"triggerId": fire["trigger"]["id"], "triggerRunId": fire["runId"]},
        )
        .get("scenarioRun", {})
        .get("result")
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sim_design.stop()
    key = sim_design.api_key.encode()
    for path in sim_design.data_dir.rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes(), path
    assert not [line for line in sim_design.stderr_lines if sim_design.api_key in line]


def test_project_copied_in_while_running_appears(sim_design: SimNode, sim_project_factory) -> None:  # type: ignore[no-untyped-def]
    api = Api(sim_design)
    assert [p["projectKey"] for p in api.json("GET", "/projects/")] == ["SIMPRJ"]
    sim_project_factory(sim_design.data_dir, key="LATE", scenarios={})
    assert [p["projectKey"] for p in api.json("GET", "/projects/")] == ["LATE", "SIMPRJ"]
    assert api.json("GET", "/projects/LATE")["name"] == "Project LATE"
    assert api.json("GET", "/projects/LATE/scenarios/") == []


def test_project_delete_answers_a_finished_future(sim_design: SimNode) -> None:
    api = Api(sim_design)
    future = api.json("DELETE", "/projects/SIMPRJ", params={"wait": "false"})
    assert future["hasResult"] is True and future["alive"] is False
    state = api.json("GET", f"/futures/{future['jobId']}")
    assert state["hasResult"] is True and "result" in state
    assert "result" not in api.json("GET", f"/futures/{future['jobId']}", params={"peek": "true"})
    assert api.call("GET", "/projects/SIMPRJ").status_code == 401
    assert "SIMPRJ" not in [p["projectKey"] for p in api.json("GET", "/projects/")]
    assert api.call("GET", "/futures/no-such-job").status_code == 404
