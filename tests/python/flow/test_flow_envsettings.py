"""Per-environment project settings through the real CLI against stand-in nodes (issue 21).

mlcd.yaml's ``variables``, ``scenarios`` and ``code_env_remappings`` are applied by deploy,
read back, shown by plan, checked by status, and put back by rollback.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mlcd.dss import localsettings
from mlcd.dss.node import DSSNode
from mlcd.sim.dialects import NAMED
from support.flowtools import active_on, make_bundle
from support.pipeline_env import PipelineEnv, key_env_name

SECRET = "s3cr3t-Scoring-Token-7f9d2a61"


def node_of(pipe: PipelineEnv, env: str) -> DSSNode:
    return DSSNode(pipe.automation[env].url, pipe.keys[key_env_name(env)], name=env)


def on_node(pipe: PipelineEnv, env: str) -> dict[str, Any]:
    """What the automation node holds: local variables, scenario states, code-env remappings."""
    node = node_of(pipe, env)
    try:
        key = pipe.project_key
        return {
            "variables": localsettings.local_variables(node, key),
            "scenarios": localsettings.scenario_states(node, key),
            "codeEnvs": localsettings.code_env_remappings(node, key),
        }
    finally:
        node.close()


def scheduled_runs(pipe: PipelineEnv, env: str) -> int:
    """Runs of BUILD_MODEL on ``env`` started by its time-based trigger."""
    node = node_of(pipe, env)
    try:
        runs = node.get_last_runs(pipe.project_key, "BUILD_MODEL", limit=20)
    finally:
        node.close()
    return sum(1 for r in runs if (r.get("trigger") or {}).get("trigger", {}).get("type") == "temporal")


def wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def set_by_hand(pipe: PipelineEnv, where: str, **local: Any) -> None:
    node = node_of(pipe, where)
    try:
        localsettings.set_local_variables(node, pipe.project_key, local)
    finally:
        node.close()


def use_dialect(pipe: PipelineEnv, env: str, name: str) -> None:
    path = pipe.automation[env].data_dir / "node.json"
    data = json.loads(path.read_text())
    data["dialect"] = NAMED[name]
    path.write_text(json.dumps(data))


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def one_error_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlcd {command}: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def cfg(pipe: PipelineEnv) -> Iterator[PipelineEnv]:
    """test keeps the scheduled BUILD_MODEL off, prod switches it on; both set local variables."""
    pipe.env_config("test").update(
        variables={"env": "test", "threshold": 0.7},
        scenarios={"inactive": ["BUILD_MODEL"]},
        code_env_remappings={"py39_ml": "py39_ml_test"},
    )
    pipe.env_config("prod").update(
        variables={"env": "prod", "threshold": 0.8, "scoring_token": {"value_env": "PROD_SCORING_TOKEN"}},
        scenarios={"active": ["BUILD_MODEL"]},
        code_env_remappings={"py39_ml": "py39_ml_prod"},
    )
    pipe.write_config()
    pipe.env["PROD_SCORING_TOKEN"] = SECRET
    yield pipe


def test_test_keeps_the_scheduled_scenario_off_while_prod_switches_it_on(cfg: PipelineEnv) -> None:
    make_bundle(cfg, 1)
    plan = ok(cfg.mlcd("plan", "--env", "prod"))
    assert 'variable env: (unset) -> "prod"' in plan.stdout
    assert "variable scoring_token: (unset) -> (secret)" in plan.stdout
    assert "code env remapping py39_ml: (none) -> py39_ml_prod" in plan.stdout
    ok(cfg.mlcd("deploy", "--env", "test"))
    deployed = ok(cfg.mlcd("deploy", "--env", "prod"))
    test, prod = on_node(cfg, "test"), on_node(cfg, "prod")
    assert test["scenarios"]["BUILD_MODEL"] is False and prod["scenarios"]["BUILD_MODEL"] is True
    assert test["variables"] == {"env": "test", "threshold": 0.7}
    assert prod["variables"] == {"env": "prod", "threshold": 0.8, "scoring_token": SECRET}
    assert test["codeEnvs"] == {"py39_ml": "py39_ml_test"} and prod["codeEnvs"] == {"py39_ml": "py39_ml_prod"}
    # the scheduled scenario really runs on its own in prod, never in test
    assert wait_for(lambda: scheduled_runs(cfg, "prod") > 0, 15)
    assert scheduled_runs(cfg, "test") == 0
    # the secret is in no output, record or audit line
    written = [deployed.stdout, deployed.stderr, plan.stdout]
    written += [p.read_bytes().decode("utf-8", "replace") for p in cfg.out_dir.rglob("*") if p.is_file()]
    assert not any(SECRET in text for text in written)
    assert (
        cfg.run_record()["environments"]["prod"]["settingsApplied"]["variables"]["scoring_token"]
        == "(secret)"
    )
    # a redeploy with nothing changed changes nothing, and the plan says so
    again = ok(cfg.mlcd("plan", "--env", "prod"))
    assert "configuration changes: none" in again.stdout
    status = ok(cfg.mlcd("status", "--env", "prod"))
    assert "drift" in status.stdout and "none" in status.stdout


def test_a_changed_variable_is_planned_applied_and_a_rollback_restores_it(cfg: PipelineEnv) -> None:
    first = str(make_bundle(cfg, 1)["bundleId"])
    ok(cfg.mlcd("deploy", "--env", "test"))
    cfg.env_config("test")["variables"] = {"env": "test", "threshold": 0.9, "added": "yes"}
    cfg.env_config("test")["scenarios"] = {"active": ["BUILD_MODEL"]}
    cfg.write_config()
    make_bundle(cfg, 2)
    plan = ok(cfg.mlcd("plan", "--env", "test"))
    assert "variable threshold: 0.7 -> 0.9" in plan.stdout
    assert 'variable added: (unset) -> "yes"' in plan.stdout
    assert "scenario BUILD_MODEL: inactive -> active" in plan.stdout
    ok(cfg.mlcd("deploy", "--env", "test"))
    now = on_node(cfg, "test")
    assert now["variables"] == {"env": "test", "threshold": 0.9, "added": "yes"}
    assert now["scenarios"]["BUILD_MODEL"] is True
    before = cfg.run_record()["environments"]["test"]["settingsBefore"]
    assert before["variables"] == {"env": "test", "threshold": 0.7} and before["absentVariables"] == ["added"]
    ok(cfg.mlcd("rollback", "--env", "test"))
    assert active_on(cfg, "test") == first
    back = on_node(cfg, "test")
    assert back["variables"] == {"env": "test", "threshold": 0.7}
    assert back["scenarios"]["BUILD_MODEL"] is False


def test_manual_drift_is_reported_by_status(cfg: PipelineEnv) -> None:
    make_bundle(cfg, 1)
    ok(cfg.mlcd("deploy", "--env", "test"))
    set_by_hand(cfg, "test", threshold=0.1)
    status = cfg.mlcd("status", "--env", "test")
    assert "drift on test: variable threshold: node has 0.1, mlcd.yaml says 0.7" in status.stdout, (
        status.stdout + status.stderr
    )


def test_a_node_that_ignores_the_variables_write_fails_clearly_and_activates_nothing(
    cfg: PipelineEnv,
) -> None:
    first = str(make_bundle(cfg, 1)["bundleId"])
    ok(cfg.mlcd("deploy", "--env", "test"))
    use_dialect(cfg, "test", "local-variables-ignored")
    cfg.env_config("test")["variables"] = {"env": "test", "threshold": 0.5}
    cfg.write_config()
    make_bundle(cfg, 2)
    proc = cfg.mlcd("deploy", "--env", "test")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    line = one_error_line(proc, "deploy")
    assert "did not keep the local variable(s) threshold" in line and "unchanged" in line
    assert active_on(cfg, "test") == first


@pytest.mark.slow
def test_a_node_that_ignores_the_code_env_remapping_fails_before_activation(cfg: PipelineEnv) -> None:
    use_dialect(cfg, "test", "code-env-remapping-ignored")
    first = str(make_bundle(cfg, 1)["bundleId"])
    cfg.env_config("test").pop("code_env_remappings")
    cfg.write_config()
    ok(cfg.mlcd("deploy", "--env", "test"))
    cfg.env_config("test")["code_env_remappings"] = {"py39_ml": "py39_ml_test"}
    cfg.write_config()
    make_bundle(cfg, 2)
    proc = cfg.mlcd("deploy", "--env", "test")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "bundleContainerSettings.remapping.codeEnvs" in one_error_line(proc, "deploy")
    assert active_on(cfg, "test") == first


@pytest.mark.slow
def test_a_node_that_ignores_scenario_states_is_rolled_back(cfg: PipelineEnv) -> None:
    first = str(make_bundle(cfg, 1)["bundleId"])
    ok(cfg.mlcd("deploy", "--env", "test"))
    use_dialect(cfg, "test", "scenario-states-ignored")
    cfg.env_config("test")["scenarios"] = {"active": ["BUILD_MODEL"]}
    cfg.write_config()
    make_bundle(cfg, 2)
    proc = cfg.mlcd("deploy", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = one_error_line(proc, "deploy")
    assert "BUILD_MODEL is inactive" in line
    assert active_on(cfg, "test") == first


@pytest.mark.slow
def test_variables_survive_a_node_that_resets_them_on_activation(cfg: PipelineEnv) -> None:
    use_dialect(cfg, "test", "local-variables-reset-on-activation")
    make_bundle(cfg, 1)
    proc = ok(cfg.mlcd("deploy", "--env", "test"))
    assert "the activation changed local variable(s)" in proc.stdout
    assert on_node(cfg, "test")["variables"] == {"env": "test", "threshold": 0.7}


@pytest.mark.slow
def test_validate_catches_an_unknown_scenario_id_against_the_design_node(cfg: PipelineEnv) -> None:
    cfg.env_config("prod")["scenarios"] = {"active": ["BUILD_MODEL", "NIGHTLY_TYPO"]}
    cfg.write_config()
    proc = cfg.mlcd("validate")
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "NIGHTLY_TYPO named in scenarios of prod do not exist" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_redeploy_with_nothing_changed_writes_nothing(cfg: PipelineEnv) -> None:
    make_bundle(cfg, 1)
    ok(cfg.mlcd("deploy", "--env", "test"))
    writes = [r for r in cfg.audit_records() if r["operation"] == "set_local_variables"]
    again = ok(cfg.mlcd("deploy", "--env", "test"))
    assert "nothing to do" in again.stdout
    assert [r for r in cfg.audit_records() if r["operation"] == "set_local_variables"] == writes
    set_by_hand(cfg, "test", threshold=0.1)  # drift, fixed by the next deploy even of the same bundle
    fixed = ok(cfg.mlcd("deploy", "--env", "test"))
    assert 'local variables on test: env="test", threshold=0.7' in fixed.stdout
    assert on_node(cfg, "test")["variables"]["threshold"] == 0.7


@pytest.mark.slow
def test_doctor_fails_on_drift_and_names_it(cfg: PipelineEnv) -> None:
    make_bundle(cfg, 1)
    ok(cfg.mlcd("deploy", "--env", "test"))
    assert ok(cfg.mlcd("doctor", "--env", "test")).returncode == 0
    set_by_hand(cfg, "test", env="staging")
    proc = cfg.mlcd("doctor", "--env", "test")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'variable env: node has "staging", mlcd.yaml says "test"' in one_error_line(proc, "doctor")


def test_a_refused_activation_puts_the_variables_back(cfg: PipelineEnv) -> None:
    """Nothing half-done: variables written for an activation DSS refuses are put back (exit 8)."""
    first = str(make_bundle(cfg, 1)["bundleId"])
    ok(cfg.mlcd("deploy", "--env", "test"))
    use_dialect(cfg, "test", "connections-non-admin-401")  # no connection pre-check: DSS refuses
    cfg.env_config("test")["variables"] = {"env": "test", "threshold": 0.9}
    cfg.env_config("test")["connection_remappings"] = {"warehouse": "warehouse_nope"}
    cfg.write_config()
    make_bundle(cfg, 2)
    proc = cfg.mlcd("deploy", "--env", "test")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "unchanged" in one_error_line(proc, "deploy")
    assert active_on(cfg, "test") == first
    assert on_node(cfg, "test")["variables"] == {"env": "test", "threshold": 0.7}
