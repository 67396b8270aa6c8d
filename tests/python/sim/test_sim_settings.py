"""The stand-in's project settings, activation options, connection list and port errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from mlcd.sim.launcher import SimNode
from support.simclient import Api

KEY = "SIMPRJ"


def _activated_v1(tmp_path: Path, design: SimNode, auto: SimNode) -> Api:
    archive = Api(design).export(KEY, "v1", tmp_path / "v1.zip")
    api = Api(auto)
    assert api.upload("/projectsFromBundle/", archive).status_code == 200
    return api


def test_settings_round_trip_keeps_every_key(
    tmp_path: Path, sim_design: SimNode, sim_automation: SimNode
) -> None:
    auto = _activated_v1(tmp_path, sim_design, sim_automation)
    settings = auto.json("GET", f"/projects/{KEY}/settings")
    assert settings["bundleContainerSettings"]["remapping"]["connections"] == []
    settings["settings"]["codeEnvs"]["python"]["envName"] = "py311"
    settings["custom"] = {"kept": [1, 2]}
    settings["bundleContainerSettings"]["remapping"]["connections"] = [{"source": "a", "target": "b"}]
    assert auto.call("PUT", f"/projects/{KEY}/settings", json=settings).status_code == 204
    sim_automation.restart()
    assert Api(sim_automation).json("GET", f"/projects/{KEY}/settings") == settings


def test_settings_refused_when_malformed_or_project_missing(
    tmp_path: Path, sim_design: SimNode, sim_automation: SimNode
) -> None:
    auto = _activated_v1(tmp_path, sim_design, sim_automation)
    bad = {"bundleContainerSettings": {"remapping": {"connections": {"warehouse": "other"}}}}
    resp = auto.call("PUT", f"/projects/{KEY}/settings", json=bad)
    assert resp.status_code == 400 and resp.json()["code"] == "ERR_INVALID_SETTINGS"
    assert auto.call("PUT", f"/projects/{KEY}/settings", json=[1]).status_code == 400
    assert auto.call("GET", "/projects/NOPE/settings").status_code == 401
    assert Api(sim_design).json("GET", f"/projects/{KEY}/settings")["projectKey"] == KEY


def test_activate_refuses_unknown_body_fields(
    tmp_path: Path, sim_design: SimNode, sim_automation: SimNode
) -> None:
    auto = _activated_v1(tmp_path, sim_design, sim_automation)
    path = f"/projects/{KEY}/bundles/imported/v1/actions/activate"
    for wrong in ({"remap": {"warehouse": "x"}}, {"connectionRemappings": {"warehouse": "warehouse"}}):
        resp = auto.call("POST", path, json=wrong)
        assert resp.status_code == 400
        assert resp.json()["code"] == "ERR_INVALID_ACTIVATION_OPTIONS"
        assert next(iter(wrong)) in resp.json()["message"] and "settings" in resp.json()["message"]
    assert "activeBundleState" not in auto.json("GET", "/projects/")[0]
    resp = auto.call("POST", path, json={"scenariosActiveOnActivation": {"SLOW": False}})
    assert resp.status_code == 200, resp.text


def test_activation_report_carries_node_messages(
    tmp_path: Path, sim_design: SimNode, sim_automation: SimNode
) -> None:
    auto = _activated_v1(tmp_path, sim_design, sim_automation)
    node_json = sim_automation.data_dir / "node.json"
    cfg = json.loads(node_json.read_text())
    cfg["activationMessages"] = [{"severity": "ERROR", "message": "plugin x is missing"}]
    node_json.write_text(json.dumps(cfg))
    report = auto.json("POST", f"/projects/{KEY}/bundles/imported/v1/actions/activate", json={})
    assert report["error"] is True and report["anyMessage"] is True
    assert report["messages"][-1]["message"] == "plugin x is missing"


def test_admin_connections_listed_for_admin_keys_only(sim_automation: SimNode) -> None:
    api = Api(sim_automation)
    listed = api.json("GET", "/admin/connections/")
    assert list(listed) == ["warehouse"]
    assert listed["warehouse"]["type"] == "PostgreSQL"
    node_json = sim_automation.data_dir / "node.json"
    cfg = json.loads(node_json.read_text())
    node_json.write_text(json.dumps({**cfg, "apiKeyIsAdmin": False}))
    resp = api.call("GET", "/admin/connections/")
    assert resp.status_code == 403
    assert "administrator" in resp.json()["message"]
    assert api.json("GET", "/auth/info")["isAdmin"] is False


def test_port_in_use_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["-m", "mlcd", "sim", "serve", "--role", "design", "--data-dir", str(tmp_path)]
        proc = subprocess.run(
            [sys.executable, *argv, "--port", str(port)],
            env={**os.environ, "MLCD_SIM_API_KEY": "sim-key-1234"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "Address already in use" in lines[0]
    assert "--port 0" in lines[0]
