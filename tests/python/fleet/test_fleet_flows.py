"""A multi-node environment against three stand-in automation nodes: all or nothing, one outcome.

Each test ends by reading every node's active bundle on the node itself, the
environment's stage file and its audit records (one per node plus the environment's).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.flowtools import active_on, make_bundle, stage
from support.pipeline_env import DEFAULT_ENV_OPTIONS, PipelineEnv, key_env_name, start_pipeline_env

NODES = ("eu", "us", "ap")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[PipelineEnv]:
    """Three automation nodes as one environment `prod` (nodes eu, us, ap)."""
    with start_pipeline_env(tmp_path / "pipe", envs=NODES) as p:
        p.env["MLCD_LOCK_DIR"] = str(tmp_path / "locks")
        env: dict[str, Any] = {"name": "prod", **DEFAULT_ENV_OPTIONS, "tests": False}
        env["nodes"] = [
            {
                "name": n,
                "url": p.automation[n].url,
                "api_key_env": key_env_name(n),
                "connection_remappings": {"warehouse": f"warehouse_{n}"},
            }
            for n in NODES
        ]
        p.config["environments"] = [env]
        p.write_config()
        yield p


def actives(pipe: PipelineEnv) -> dict[str, str | None]:
    return {n: active_on(pipe, n) for n in NODES}


def finals(pipe: PipelineEnv, env: str) -> list[str]:
    return [
        str(r["outcome"])
        for r in pipe.audit_records()
        if r["operation"] == "deployment" and r["environment"] == env
    ]


def released(pipe: PipelineEnv, *, plan_first: bool = False) -> str:
    """Bundle 1 deployed and smoke-tested on every node (the previous bundle of each test)."""
    good = str(make_bundle(pipe, 1)["bundleId"])
    if plan_first:
        proc = pipe.mlcd("plan", "--env", "prod")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert set(stage(pipe, "plan-prod")["details"]["nodes"]) == set(NODES)
        assert actives(pipe) == {n: None for n in NODES}  # a plan changes nothing
    proc = pipe.mlcd("deploy", "--env", "prod")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = pipe.mlcd("smoke", "--env", "prod")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return good


def all_succeed(fleet: PipelineEnv) -> str:
    """plan, deploy and smoke on every node: one SUCCEEDED record per node and one for the environment."""
    good = released(fleet, plan_first=True)
    assert actives(fleet) == {n: good for n in NODES}
    assert finals(fleet, "prod") == ["SUCCEEDED"]
    for n in NODES:
        assert finals(fleet, f"prod@{n}") == ["SUCCEEDED"]
    assert set(stage(fleet, "deploy-prod")["details"]["nodes"]) == set(NODES)
    proc = fleet.mlcd("status", "--env", "prod")
    assert proc.returncode == 0 and f"have bundle {good} active" in proc.stdout, proc.stdout + proc.stderr
    return good


@pytest.mark.slow  # the default suite checks the same through the last test of this file
def test_all_nodes_succeed_with_one_record_each_and_one_for_the_environment(fleet: PipelineEnv) -> None:
    all_succeed(fleet)


@pytest.mark.slow  # ~13 s each: four stand-in processes
def test_one_node_refusing_activation_rolls_the_others_back(fleet: PipelineEnv) -> None:
    good = released(fleet)
    make_bundle(fleet, 2)
    fleet.automation["us"].set_faults(
        {"seed": 1, "rules": [{"method": "POST", "path": "actions/activate", "status": 500, "times": 1}]}
    )
    proc = fleet.mlcd("deploy", "--env", "prod")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "node us" in proc.stderr and "rolled back" in proc.stderr
    assert actives(fleet) == {n: good for n in NODES}
    assert finals(fleet, "prod")[-1] == "FAILED_ROLLED_BACK"
    assert finals(fleet, "prod@us")[-1] == "FAILED_UNCHANGED"
    assert finals(fleet, "prod@eu")[-1] == finals(fleet, "prod@ap")[-1] == "FAILED_ROLLED_BACK"


@pytest.mark.slow  # ~13 s each: four stand-in processes
def test_one_node_failing_smoke_rolls_every_node_back(fleet: PipelineEnv) -> None:
    good = released(fleet)
    make_bundle(fleet, 2)
    assert fleet.mlcd("deploy", "--env", "prod").returncode == 0
    rule = {"method": "GET", "path": "scenarios/$", "status": 500, "times": 1}
    fleet.automation["ap"].set_faults({"seed": 1, "rules": [rule]})
    proc = fleet.mlcd("smoke", "--env", "prod")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert actives(fleet) == {n: good for n in NODES}
    assert finals(fleet, "prod")[-1] == "FAILED_ROLLED_BACK"
    for n in NODES:
        assert finals(fleet, f"prod@{n}")[-1] == "FAILED_ROLLED_BACK"


@pytest.mark.slow  # ~13 s each: four stand-in processes
def test_one_node_down_from_the_start_changes_nothing(fleet: PipelineEnv) -> None:
    good = released(fleet)
    make_bundle(fleet, 2)
    fleet.automation["eu"].stop()
    proc = fleet.mlcd("deploy", "--env", "prod")
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert "eu" in proc.stderr and "nothing was changed on any node" in proc.stderr
    assert active_on(fleet, "us") == active_on(fleet, "ap") == good
    assert finals(fleet, "prod")[-1] == "FAILED_UNCHANGED"
    assert not [
        r for r in fleet.audit_records() if r["operation"] in ("import", "activate") and r["bundleId"] != good
    ]


def test_a_failed_rollback_names_exactly_the_node_that_needs_a_person(fleet: PipelineEnv) -> None:
    good = all_succeed(fleet)
    bad = str(make_bundle(fleet, 2)["bundleId"])
    assert fleet.mlcd("deploy", "--env", "prod").returncode == 0
    fleet.automation["eu"].set_faults(
        {"seed": 1, "rules": [{"method": "GET", "path": "scenarios/$", "status": 500, "times": 1}]}
    )
    fleet.automation["us"].set_faults(
        {"seed": 1, "rules": [{"method": "POST", "path": "actions/activate", "status": 500}]}
    )
    proc = fleet.mlcd("smoke", "--env", "prod")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "needing a person: us" in proc.stderr
    assert actives(fleet) == {"eu": good, "us": bad, "ap": good}
    assert stage(fleet, "smoke-prod")["details"]["needsPerson"] == ["us"]
    assert finals(fleet, "prod")[-1] == "FAILED_NEEDS_ATTENTION"
    assert finals(fleet, "prod@us")[-1] == "FAILED_NEEDS_ATTENTION"
    assert finals(fleet, "prod@eu")[-1] == finals(fleet, "prod@ap")[-1] == "FAILED_ROLLED_BACK"


@pytest.mark.slow  # ~8 s: four stand-in processes
def test_rollback_returns_every_node_to_its_previous_bundle(fleet: PipelineEnv) -> None:
    good = released(fleet)
    make_bundle(fleet, 2)
    assert fleet.mlcd("deploy", "--env", "prod").returncode == 0
    proc = fleet.mlcd("rollback", "--env", "prod", "--reason", "drill")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert actives(fleet) == {n: good for n in NODES}
    assert stage(fleet, "rollback-prod")["outcome"] == "ROLLED_BACK"
    assert finals(fleet, "prod")[-1] == "FAILED_ROLLED_BACK"
    for n in NODES:
        assert finals(fleet, f"prod@{n}")[-1] == "FAILED_ROLLED_BACK"
