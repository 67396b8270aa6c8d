"""The real `mlcd` CLI deploying through a stand-in Project Deployer (all nodes are processes on loopback).

The deployer updates the automation stand-ins over HTTP; each test checks what a
user sees (exit code, one stderr line, stage files, JUnit, audit trail) and the
automation node itself (its active bundle), as the direct-mode flow tests do.
"""

from __future__ import annotations

import subprocess

import pytest
from lxml import etree

from support.deployer_env import DeployerPipeline
from support.flowtools import active_on, deployments, make_bundle, stage


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("mlcd ")]


def test_release_through_the_deployer_then_an_unhealthy_update_is_rolled_back(dp: DeployerPipeline) -> None:
    pipe = dp.pipe
    pipe.env_config("prod")["approval"] = True
    pipe.write_config()
    doctor = ok(pipe.mlcd("doctor", "--env", "prod"))
    assert "prod deployer" in doctor.stdout and "none yet (the first deploy creates one" in doctor.stdout
    ok(pipe.mlcd("run", "--approve", "prod", "--approver", "ann", "--build-number", "1"))
    good = pipe.run_record()["bundleId"]
    assert active_on(pipe, "test") == good and active_on(pipe, "prod") == good
    assert deployments(pipe, "test") == ["SUCCEEDED"] and deployments(pipe, "prod") == ["SUCCEEDED"]
    assert dp.deployment("prod")["bundleId"] == good
    assert stage(pipe, "deploy-prod")["details"]["deploymentHealth"][0]["health"] == "HEALTHY"
    # the next bundle's update ends UNHEALTHY on prod: rolled back through the deployer, verified
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    dp.set_faults(unhealthyBundles=["*_b2"])
    proc = pipe.mlcd("approve", "--env", "prod", "--approver", "ann")
    assert proc.returncode == 0, proc.stderr
    proc = pipe.mlcd("deploy", "--env", "prod")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    [line] = errors(proc)
    assert "UNHEALTHY" in line and "rolled back" in line and good in line
    assert f"activation of {bad} on prod through the Project Deployer failed: deployment " in line, line
    assert "unknown result" not in line
    assert active_on(pipe, "prod") == good and dp.deployment("prod")["bundleId"] == good
    result = stage(pipe, "deploy-prod")
    assert (result["outcome"], result["exitCode"]) == ("ROLLED_BACK", 4)
    gates = result["details"]["deploymentHealth"]
    assert [g["health"] for g in gates] == ["UNHEALTHY", "HEALTHY"]
    [message] = gates[0]["messages"]
    assert message["severity"] == "ERROR" and message["code"] == "PROJECT_UNHEALTHY"
    xml = etree.parse(str(pipe.out_dir / "reports" / "prod" / f"deployment-health-{bad}.xml")).getroot()
    failed = [c.get("name") for c in xml.iter("testcase") if c.find("failure") is not None]
    assert failed == ["deployment health", "01 ERROR PROJECT_UNHEALTHY"]
    assert deployments(pipe, "prod") == ["SUCCEEDED", "FAILED_ROLLED_BACK"]
    assert active_on(pipe, "test") == bad  # test was healthy
    updates = dp.api("GET", f"project-deployer/deployments/{dp.deployment('prod')['id']}/update")
    assert [u["status"] for u in updates] == ["SUCCESS", "SUCCESS", "SUCCESS"]  # newest first


@pytest.mark.slow
def test_smoke_failure_and_explicit_rollback_go_through_the_deployer(dp: DeployerPipeline) -> None:
    pipe = dp.pipe
    good = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    pipe.set_design_variables(fail_smoke=True)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert active_on(pipe, "test") == bad
    proc = pipe.mlcd("smoke", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert active_on(pipe, "test") == good and dp.deployment("test")["bundleId"] == good
    result = stage(pipe, "smoke-test")
    assert result["outcome"] == "ROLLED_BACK" and result["details"]["rolledBackTo"] == good
    assert [g["health"] for g in result["details"]["deploymentHealth"]] == ["HEALTHY"]
    assert any(r.endswith(f"deployment-health-{good}.xml") for r in result["reports"])
    assert deployments(pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    # deploy the bad bundle again, then roll back by hand: the same path, its own record
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert active_on(pipe, "test") == bad
    proc = ok(pipe.mlcd("rollback", "--env", "test", "--reason", "by hand"))
    assert active_on(pipe, "test") == good
    rolled = stage(pipe, "rollback-test")
    assert rolled["details"]["to"] == good and rolled["details"]["deploymentHealth"][0]["health"] == "HEALTHY"
    ops = [r["operation"] for r in pipe.audit_records() if r["environment"] == "test"]
    for op in ("record_previous", "create_project_from_bundle", "import", "preload", "activate", "verify"):
        assert op in ops, op
    assert "rollback" in ops and "run_scenario" in ops
