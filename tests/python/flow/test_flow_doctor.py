"""`mlcd doctor`: read-only checks of every node, through the real CLI against the stand-in."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from mlcd.sim.dialects import NAMED, REMAPPING_KEY
from support.flowtools import make_bundle, stage
from support.pipeline_env import PipelineEnv


def _dialect(pipe: PipelineEnv, name: str) -> None:
    for node in pipe.nodes():
        path = node.data_dir / "node.json"
        data = json.loads(path.read_text())
        data["dialect"] = NAMED[name]
        path.write_text(json.dumps(data))


def test_doctor_passes_and_sends_only_gets(pipe: PipelineEnv) -> None:
    for node in pipe.nodes():
        node.reset_stats()
    proc = pipe.mlcd("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "absent (the first deploy creates it)" in proc.stdout
    assert "DSS version" in proc.stdout and "15.2.0" in proc.stdout
    for node in pipe.nodes():
        routes = node.stats()["routes"]
        assert routes and all(r.startswith("GET ") for r in routes), routes
    suite = etree.parse(str(pipe.out_dir / "reports" / "doctor.xml")).getroot()
    assert suite.get("failures") == "0" and int(str(suite.get("tests"))) >= 10
    assert stage(pipe, "doctor")["exitCode"] == 0
    make_bundle(pipe, 1)
    assert pipe.mlcd("deploy", "--env", "test").returncode == 0
    after = pipe.mlcd("doctor", "--env", "test")
    assert after.returncode == 0 and f"{REMAPPING_KEY}: present" in after.stdout


def test_doctor_names_a_missing_remapping_target_exit_2(pipe: PipelineEnv) -> None:
    pipe.env_config("prod")["connection_remappings"] = {"warehouse": "warehouse_nope"}
    pipe.write_config()
    proc = pipe.mlcd("doctor")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("mlcd doctor: error: ") and "warehouse_nope" in line and "(fix: " in line


def test_doctor_against_a_stopped_node_prints_one_line_exit_6(pipe: PipelineEnv) -> None:
    pipe.automation["prod"].stop()
    proc = pipe.mlcd("doctor", "--env", "prod")
    assert proc.returncode == 6, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("mlcd doctor: error: ") and "prod" in line


def _verdicts(pipe: PipelineEnv) -> dict[tuple[str, str], tuple[bool, str]]:
    checks = stage(pipe, "doctor")["details"]["checks"]
    return {(c["node"], c["name"]): (c["ok"], c["verdict"]) for c in checks}


# the default suite runs the evidence and the reading that changes a verdict; the others (a missing
# project as 404, stack traces in error bodies, and what a write, an activation or a preload does)
# run with the slow tests
READ_BY_DOCTOR = ("evidence", "connections-non-admin-401")


@pytest.mark.parametrize(
    "dialect",
    [d if d in READ_BY_DOCTOR else pytest.param(d, marks=pytest.mark.slow) for d in sorted(NAMED)],
)
def test_doctor_verdicts_under_each_dialect(pipe: PipelineEnv, dialect: str) -> None:
    _dialect(pipe, dialect)
    proc = pipe.mlcd("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = _verdicts(pipe)
    non_admin = NAMED[dialect].get("connectionsNonAdmin") == "401"
    for env in ("test", "prod"):
        assert got[(env, "project")] == (True, "absent (the first deploy creates it)")
        assert got[(env, "node type")] == (True, "AUTOMATION")
        if non_admin:
            assert got[(env, "key may list connections")] == (
                True,
                "no (HTTP 401): deploy skips its connection pre-check",
            )
            assert got[(env, "remapping targets exist")] == (True, "unknown (connections not listable)")
        else:
            assert got[(env, "key may list connections")] == (True, "yes")
            assert got[(env, "remapping targets exist")] == (True, "1 found")
    assert got[("design", "project exists")] == (True, "SAMPLE")
    # a project key that does not exist is a configuration problem (exit 2) in every reading, never
    # a refused key (a missing project answers 401 in DSS's default reading), in one line
    config = json.loads(json.dumps(pipe.config))
    config["project"] = "NOPE"
    pipe.write_config(config)
    bad = pipe.mlcd("doctor")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    [line] = bad.stderr.strip().splitlines()
    assert line.startswith("mlcd doctor: error: ") and "design: project exists" in line and "(fix: " in line
    assert _verdicts(pipe)[("design", "API key")][0] is True
