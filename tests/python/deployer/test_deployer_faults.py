"""Bad input and faults of the Project Deployer path, each ending in a stated, verified state.

Every case runs the real CLI against the stand-in deployer and automation nodes
(processes on loopback) and checks the exit code, the one stderr line, the
automation node's active bundle and the audit trail.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from support.deployer_env import DeployerPipeline
from support.flowtools import active_on, deployments, make_bundle, stage


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mlcd ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def first_release(dp: DeployerPipeline) -> str:
    """Bundle 1 deployed to test through the deployer; its id."""
    good = str(make_bundle(dp.pipe, 1)["bundleId"])
    ok(dp.pipe.mlcd("deploy", "--env", "test"))
    return good


def set_deploy_timeout(dp: DeployerPipeline, seconds: float) -> None:
    dp.pipe.env_config("test")["timeouts"]["deploy"] = seconds
    dp.pipe.write_config()


def test_unknown_infrastructure_is_refused_naming_the_known_ones(dp: DeployerPipeline) -> None:
    dp.pipe.env_config("test")["deployer"]["infra"] = "tset-infra"
    dp.pipe.write_config()
    make_bundle(dp.pipe, 1)
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_error(proc)
    assert "'tset-infra'" in line and "known infrastructures: prod-infra, test-infra" in line
    assert "(fix: set deployer.infra of environment test" in line
    assert active_on(dp.pipe, "test") is None
    assert deployments(dp.pipe, "test") == ["FAILED_UNCHANGED"]
    doctor = dp.pipe.mlcd("doctor", "--env", "test")  # says so before a deploy, read-only
    assert doctor.returncode == 2, doctor.stdout + doctor.stderr
    assert "'tset-infra' unknown (known: prod-infra, test-infra)" in doctor.stdout


@pytest.mark.slow
def test_a_key_that_may_not_deploy_to_the_infrastructure_is_exit_6(dp: DeployerPipeline) -> None:
    data = dp.node_config()
    data["infras"]["test-infra"]["canDeploy"] = False
    dp.write_node_config(data)
    make_bundle(dp.pipe, 1)
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert "may not deploy to infrastructure 'test-infra'" in one_error(proc)
    assert dp.pipe.keys["DSS_DEPLOYER_API_KEY"] not in proc.stdout + proc.stderr
    assert active_on(dp.pipe, "test") is None


@pytest.mark.slow
def test_an_update_that_never_ends_is_aborted_at_the_deadline_and_rolled_back(dp: DeployerPipeline) -> None:
    good = first_release(dp)
    set_deploy_timeout(dp, 3)
    dp.set_faults(hangBundles=["*_b2"])
    bad = str(make_bundle(dp.pipe, 2)["bundleId"])
    started = time.monotonic()
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert time.monotonic() - started < 60
    line = one_error(proc)
    assert "did not finish within 3s and was aborted" in line and f"rolled back to {good}" in line
    assert active_on(dp.pipe, "test") == good and dp.deployment("test")["bundleId"] == good
    updates = dp.api("GET", f"project-deployer/deployments/{dp.deployment('test')['id']}/update")
    assert [u["status"] for u in updates] == ["SUCCESS", "ABORTED", "SUCCESS"]  # newest first
    assert deployments(dp.pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    assert bad not in (active_on(dp.pipe, "test") or "")


@pytest.mark.slow
def test_when_the_rollback_update_never_ends_either_a_person_must_act(dp: DeployerPipeline) -> None:
    good = first_release(dp)
    set_deploy_timeout(dp, 2)
    dp.set_faults(hangBundles=["*"])
    make_bundle(dp.pipe, 2)
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = one_error(proc)
    assert f"rollback of environment 'test' to bundle {good} failed" in line and "aborted" in line
    assert active_on(dp.pipe, "test") == good  # both updates were aborted before touching the node
    assert deployments(dp.pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
    assert stage(dp.pipe, "deploy-test")["outcome"] == "ROLLBACK_FAILED"


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["result", "dead"])
def test_an_update_failing_half_way_is_rolled_back(dp: DeployerPipeline, dialect: str) -> None:
    good = first_release(dp)
    data = dp.node_config()
    data["dialect"] = {"updateFailure": dialect}
    data["deployerFaults"] = {"failBundles": ["*_b2"]}
    dp.write_node_config(data)
    make_bundle(dp.pipe, 2)
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    line = one_error(proc)
    assert f"rolled back to {good}" in line
    assert ("half way" in line) if dialect == "result" else ("ended without a result" in line)
    assert active_on(dp.pipe, "test") == good and dp.deployment("test")["bundleId"] == good
    gates = stage(dp.pipe, "deploy-test")["details"]["deploymentHealth"]
    assert [g["health"] for g in gates][-1] == "HEALTHY"
    assert deployments(dp.pipe, "test")[-1] == "FAILED_ROLLED_BACK"


@pytest.mark.slow
def test_a_health_stuck_unknown_fails_the_gate_and_the_rollback_says_so(dp: DeployerPipeline) -> None:
    good = first_release(dp)
    dp.set_faults(healthUnknown=True)
    bad = str(make_bundle(dp.pipe, 2)["bundleId"])
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = one_error(proc)
    assert (
        "is UNKNOWN after the update" in line and f"rollback of environment 'test' to bundle {good}" in line
    )
    assert active_on(dp.pipe, "test") == good  # the rollback's update ran; only its health is unknown
    assert deployments(dp.pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
    assert stage(dp.pipe, "deploy-test")["outcome"] == "ROLLBACK_FAILED"
    assert bad != good


@pytest.mark.slow
def test_warning_health_fails_by_default_and_passes_when_allowed(dp: DeployerPipeline) -> None:
    good = first_release(dp)
    dp.set_faults(warningBundles=["*_b2"])
    bad = str(make_bundle(dp.pipe, 2)["bundleId"])
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 4 and "is WARNING after the update" in one_error(proc)
    assert active_on(dp.pipe, "test") == good
    dp.pipe.env_config("test")["deployer"]["allow_warning"] = True
    dp.pipe.write_config()
    ok(dp.pipe.mlcd("deploy", "--env", "test"))
    assert active_on(dp.pipe, "test") == bad
    [gate] = stage(dp.pipe, "deploy-test")["details"]["deploymentHealth"]
    assert (
        gate["health"] == "WARNING" and gate["passed"] and gate["messages"][0]["code"] == "SCENARIO_UNKNOWN"
    )


@pytest.mark.slow
def test_a_created_deployment_that_ends_unhealthy_has_nothing_to_roll_back_to(dp: DeployerPipeline) -> None:
    dp.set_faults(unhealthyBundles=["*"])
    bad = str(make_bundle(dp.pipe, 1)["bundleId"])
    proc = dp.pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert "UNHEALTHY" in one_error(proc)
    assert dp.deployment("test")["bundleId"] == bad and active_on(dp.pipe, "test") == bad
    assert deployments(dp.pipe, "test") == ["FAILED_NEEDS_ATTENTION"]


@pytest.mark.slow
@pytest.mark.parametrize("after_restart", ["gone", "dead"])
def test_a_deployer_restarted_mid_update_ends_rolled_back(dp: DeployerPipeline, after_restart: str) -> None:
    good = first_release(dp)
    data = dp.node_config()
    data["dialect"] = {"futureAfterRestart": after_restart}
    data["deployerFaults"] = {"hangBundles": ["*_b2"]}
    dp.write_node_config(data)
    make_bundle(dp.pipe, 2)
    result: list[subprocess.CompletedProcess[str]] = []
    runner = threading.Thread(target=lambda: result.append(dp.pipe.mlcd("deploy", "--env", "test")))
    runner.start()
    dep_id = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the update runs
        published = dp.api("GET", f"project-deployer/projects/{dp.pipe.project_key}")
        dep_id = published["deployments"][0]["id"]
        if (
            dp.api("GET", f"project-deployer/deployments/{dep_id}/last-update")["status"] == "RUNNING"
            and len(dp.api("GET", f"project-deployer/deployments/{dep_id}/update")) == 2
        ):
            break
        time.sleep(0.2)
    dp.deployer.restart()  # the knob stays: only a restart ends the hanging update
    runner.join(timeout=120)
    [proc] = result
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"rolled back to {good}" in one_error(proc)
    assert active_on(dp.pipe, "test") == good and dp.deployment("test")["bundleId"] == good
    updates = dp.api("GET", f"project-deployer/deployments/{dep_id}/update")
    assert [u["status"] for u in updates] == ["SUCCESS", "FAILED", "SUCCESS"]
    assert deployments(dp.pipe, "test")[-1] == "FAILED_ROLLED_BACK"
