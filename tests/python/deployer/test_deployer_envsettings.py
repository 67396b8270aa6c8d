"""Per-environment settings (variables, scenario states, code-env remappings) through the Project Deployer.

mlcd writes them into the deployment's settings (``localVariables``, ``scenariosToActivate``,
``bundleContainerSettings.remapping.codeEnvs``); the stand-in deployer's update applies them
to the automation node over HTTP, and mlcd reads them back there after the update.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from mlcd.dss import localsettings
from mlcd.dss.node import DSSNode
from support.deployer_env import DeployerPipeline
from support.flowtools import active_on, deployments, make_bundle
from support.pipeline_env import key_env_name


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mlcd ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def on_node(dp: DeployerPipeline, env: str) -> dict[str, Any]:
    """What the automation node of ``env`` holds (read there, not on the deployer)."""
    pipe = dp.pipe
    node = DSSNode(pipe.automation[env].url, pipe.keys[key_env_name(env)], name=env)
    try:
        key = pipe.project_key
        return {
            "variables": localsettings.local_variables(node, key),
            "scenarios": localsettings.scenario_states(node, key),
            "codeEnvs": localsettings.code_env_remappings(node, key),
        }
    finally:
        node.close()


def deployer_dialect(dp: DeployerPipeline, value: str) -> None:
    data = dp.node_config()
    data["dialect"] = {"deployerLocalVariables": value}
    dp.write_node_config(data)


def configure(dp: DeployerPipeline) -> None:
    """test keeps BUILD_MODEL off, prod switches it on; both set variables and a code-env remapping."""
    pipe = dp.pipe
    pipe.env_config("test").update(
        variables={"env": "test", "threshold": 0.7},
        scenarios={"inactive": ["BUILD_MODEL"]},
        code_env_remappings={"py39_ml": "py39_ml_test"},
    )
    pipe.env_config("prod").update(
        variables={"env": "prod", "threshold": 0.8},
        scenarios={"active": ["BUILD_MODEL"]},
        code_env_remappings={"py39_ml": "py39_ml_prod"},
    )
    pipe.write_config()


@pytest.mark.parametrize(
    "dialect", ["override", pytest.param("replace", marks=pytest.mark.slow)]
)
def test_settings_reach_the_automation_node_and_a_rollback_restores_them(
    dp: DeployerPipeline, dialect: str
) -> None:
    deployer_dialect(dp, dialect)
    configure(dp)
    pipe = dp.pipe
    first = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))  # first deploy: the deployment is created by this deploy
    ok(pipe.mlcd("deploy", "--env", "prod"))
    test, prod = on_node(dp, "test"), on_node(dp, "prod")
    assert test["variables"] == {"env": "test", "threshold": 0.7}
    assert prod["variables"] == {"env": "prod", "threshold": 0.8}
    assert test["scenarios"]["BUILD_MODEL"] is False and prod["scenarios"]["BUILD_MODEL"] is True
    assert test["codeEnvs"] == {"py39_ml": "py39_ml_test"} and prod["codeEnvs"] == {"py39_ml": "py39_ml_prod"}
    settings = dp.deployment("prod")
    assert settings["localVariables"] == {"env": "prod", "threshold": 0.8}
    assert settings["scenariosToActivate"] == {"BUILD_MODEL": True}
    # a changed variable, an added one and a scenario switched on; then rolled back
    pipe.env_config("test")["variables"] = {"env": "test", "threshold": 0.9, "added": "yes"}
    pipe.env_config("test")["scenarios"] = {"active": ["BUILD_MODEL"]}
    pipe.write_config()
    make_bundle(pipe, 2)
    plan = ok(pipe.mlcd("plan", "--env", "test"))
    assert "variable threshold: 0.7 -> 0.9" in plan.stdout
    ok(pipe.mlcd("deploy", "--env", "test"))
    now = on_node(dp, "test")
    assert now["variables"] == {"env": "test", "threshold": 0.9, "added": "yes"}
    assert now["scenarios"]["BUILD_MODEL"] is True
    ok(pipe.mlcd("rollback", "--env", "test"))
    assert active_on(pipe, "test") == first and dp.deployment("test")["bundleId"] == first
    back = on_node(dp, "test")
    assert back["variables"] == {"env": "test", "threshold": 0.7}
    assert back["scenarios"]["BUILD_MODEL"] is False
    assert dp.deployment("test")["localVariables"] == {"env": "test", "threshold": 0.7}


@pytest.mark.slow
def test_a_deployer_that_does_not_apply_the_variables_is_caught_and_rolled_back(dp: DeployerPipeline) -> None:
    configure(dp)
    pipe = dp.pipe
    first = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    deployer_dialect(dp, "ignored")
    pipe.env_config("test")["variables"] = {"env": "test", "threshold": 0.5}
    pipe.write_config()
    make_bundle(pipe, 2)
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = one_error(proc)
    assert "does not show the deployment's local variable threshold" in line, line
    assert "unknown result" not in line and f"rolled back to {first}" in line
    assert active_on(pipe, "test") == first
    assert deployments(pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    assert on_node(dp, "test")["variables"]["threshold"] == 0.7


@pytest.mark.slow
def test_an_unhealthy_first_update_says_the_bundle_stays_active(dp: DeployerPipeline) -> None:
    dp.set_faults(unhealthyBundles=["*"])
    bad = str(make_bundle(dp.pipe, 1)["bundleId"])
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 7, proc.stdout + proc.stderr
    line = one_error(proc)
    assert line.startswith(
        f"mlcd deploy: error: activation of {bad} on test through the Project Deployer failed: "
        f"deployment {dp.deployment('test')['id']} is UNHEALTHY after the update to {bad}"
    ), line
    assert "unknown result" not in line and "no active bundle" not in line
    assert f"bundle {bad} stays active" in line and line.count("(fix:") == 1
    assert active_on(dp.pipe, "test") == bad


@pytest.mark.slow
def test_a_changed_variable_with_the_same_bundle_is_not_written_and_says_so(dp: DeployerPipeline) -> None:
    configure(dp)
    pipe = dp.pipe
    make_bundle(pipe, 1)
    ok(pipe.mlcd("deploy", "--env", "test"))
    pipe.env_config("test")["variables"] = {"env": "test", "threshold": 0.5}
    pipe.write_config()
    again = ok(pipe.mlcd("deploy", "--env", "test"))  # the same bundle: no update
    assert "not applied (variable threshold: 0.7 -> 0.5): takes effect with the next bundle's activation" in (
        again.stdout + again.stderr
    )
    assert dp.deployment("test")["localVariables"]["threshold"] == 0.7  # deployment and node agree
    assert on_node(dp, "test")["variables"]["threshold"] == 0.7


def test_the_govern_gate_refuses_a_bundle_govern_has_not_approved(dp: DeployerPipeline) -> None:
    pipe = dp.pipe
    pipe.env_config("test")["deployer"]["govern"] = True
    pipe.write_config()
    dp.set_faults(governUnapproved=["*_b2"])
    first = str(make_bundle(pipe, 1)["bundleId"])
    done = ok(pipe.mlcd("deploy", "--env", "test"))
    assert "govern success GOVERN_APPROVED" in done.stdout + done.stderr
    bad = str(make_bundle(pipe, 2)["bundleId"])
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    line = one_error(proc)
    assert f"Dataiku Govern has not approved bundle {bad} for deployment " in line, line
    assert "Bundle not approved: bundle" in line and "the environment is unchanged" in line
    assert "(fix: get the bundle approved in Dataiku Govern" in line
    assert active_on(pipe, "test") == first and dp.deployment("test")["bundleId"] == first
    assert deployments(pipe, "test")[-1] == "FAILED_UNCHANGED"
    updates = dp.api("GET", f"project-deployer/deployments/{dp.deployment('test')['id']}/update")
    assert len(updates) == 1  # the refused bundle never reached an update


@pytest.mark.slow
def test_drift_on_the_automation_node_is_reported_and_undone_by_the_next_deploy(dp: DeployerPipeline) -> None:
    configure(dp)
    pipe = dp.pipe
    make_bundle(pipe, 1)
    ok(pipe.mlcd("deploy", "--env", "test"))
    node = DSSNode(pipe.automation["test"].url, pipe.keys[key_env_name("test")], name="test")
    try:
        localsettings.set_local_variables(node, pipe.project_key, {"threshold": 0.1})  # by hand, on the node
    finally:
        node.close()
    status = pipe.mlcd("status", "--env", "test")
    assert "drift on test: variable threshold: node has 0.1, mlcd.yaml says 0.7" in status.stdout, (
        status.stdout + status.stderr
    )
    # the next deploy sees the node's value, as plan and status do, and puts mlcd.yaml's back
    make_bundle(pipe, 2)
    deployed = ok(pipe.mlcd("deploy", "--env", "test"))
    assert "configuration change: variable threshold: 0.1 -> 0.7" in deployed.stdout + deployed.stderr
    assert pipe.run_record()["environments"]["test"]["settingsBefore"]["variables"]["threshold"] == 0.1
    assert on_node(dp, "test")["variables"]["threshold"] == 0.7
