"""Activation settings and reports, final audit records, rollback reports and gate errors, through the CLI.

Connection remappings in the project's activation settings, a refused first
deploy, where the final audit record comes from, gates on the wrong bundle or
with infrastructure errors, rollback repeats, reports and links.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from lxml import etree

from mlcd.dss.node import DSSNode
from support.flowtools import active_on, deployments, make_bundle, stage
from support.pipeline_env import PipelineEnv, key_env_name


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def node_of(pipe: PipelineEnv, env: str) -> DSSNode:
    return DSSNode(pipe.automation[env].url, pipe.keys[key_env_name(env)], name=env)


def edit_node_json(pipe: PipelineEnv, env: str, **fields: object) -> None:
    path = pipe.automation[env].data_dir / "node.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def finals(pipe: PipelineEnv, env: str) -> list[dict[str, object]]:
    return [r for r in pipe.audit_records() if r["operation"] == "deployment" and r["environment"] == env]


def test_remappings_go_to_the_activation_settings_and_the_report_is_shown(pipe: PipelineEnv) -> None:
    bundle = str(make_bundle(pipe, 1)["bundleId"])
    proc = ok(pipe.mlcd("deploy", "--env", "test"))
    node = node_of(pipe, "test")
    try:
        assert node.get_connection_remappings(pipe.project_key) == {"warehouse": "warehouse_test"}
        settings = node.get_project_settings(pipe.project_key)
        assert settings["settings"]["codeEnvs"]["python"]["mode"] == "USE_BUILTIN_MODE"  # kept as read
    finally:
        node.close()
    assert active_on(pipe, "test") == bundle
    shown = "activation info: Connection 'warehouse' of the bundle is remapped to 'warehouse_test'"
    assert shown in proc.stdout
    (activate,) = [r for r in pipe.audit_records() if r["operation"] == "activate"]
    assert activate["detail"]["report"][0]["code"] == "INFO_BUNDLE_CONNECTION_REMAPPED"


def test_missing_connection_refuses_a_first_deploy_before_creating_the_project(pipe: PipelineEnv) -> None:
    pipe.env_config("test")["connection_remappings"] = {"warehouse": "no_such_connection"}
    pipe.write_config()
    make_bundle(pipe, 1)
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "no_such_connection" in line and "unchanged" in line
    node = node_of(pipe, "test")
    try:
        assert not node.project_exists(pipe.project_key)  # nothing was created
    finally:
        node.close()
    assert deployments(pipe, "test") == ["FAILED_UNCHANGED"]


def test_refused_first_activation_says_the_project_was_created(pipe: PipelineEnv) -> None:
    edit_node_json(pipe, "test", apiKeyIsAdmin=False)  # mlcd cannot list the connections: DSS refuses
    pipe.env_config("test")["connection_remappings"] = {"warehouse": "no_such_connection"}
    pipe.write_config()
    make_bundle(pipe, 1)
    planned = ok(pipe.mlcd("plan", "--env", "test"))
    assert "connection warehouse -> no_such_connection: unknown (the key is not admin)" in planned.stdout
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 7, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"project {pipe.project_key} was created on test by this deploy and has no active bundle" in line
    assert "no_such_connection" in line and "deploy again" in line
    assert deployments(pipe, "test") == ["FAILED_NEEDS_ATTENTION"]
    assert stage(pipe, "deploy-test")["outcome"] == "NOTHING_TO_ROLL_BACK"
    assert pipe.run_record()["environments"]["test"]["state"] == "NEEDS_ATTENTION"


def test_final_record_comes_from_the_last_gate_once(pipe: PipelineEnv) -> None:
    record = make_bundle(pipe, 1)
    bundle = str(record["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert finals(pipe, "test") == []  # tests and smoke still to come
    deploys = [r for r in pipe.audit_records() if r["operation"] == "deploy"]
    assert [r["outcome"] for r in deploys] == ["DEPLOYED"]
    ok(pipe.mlcd("test", "--env", "test"))
    assert finals(pipe, "test") == []  # smoke is the last gate
    ok(pipe.mlcd("smoke", "--env", "test"))
    ok(pipe.mlcd("deploy", "--env", "test"))  # a no-op redeploy
    ok(pipe.mlcd("smoke", "--env", "test"))
    (final,) = finals(pipe, "test")
    assert final["outcome"] == "SUCCEEDED" and final["bundleId"] == bundle
    assert final["node"] == "test" and final["sha256"] == record["sha256"]
    assert isinstance(final["durationMs"], int)
    scenario_runs = [r for r in pipe.audit_records() if r["operation"] == "run_scenario"]
    assert scenario_runs and all(r["sha256"] == record["sha256"] for r in scenario_runs)
    links = stage(pipe, "smoke-test")["links"]
    assert links["project"] == f"{pipe.automation['test'].url}/projects/{pipe.project_key}/"
    assert links["report"].endswith("smoke.html") and links["auditTrail"].endswith("audit.jsonl")
    assert stage(pipe, "deploy-test")["links"]["project"] == links["project"]


def test_without_gates_the_deploy_writes_the_final_record(pipe: PipelineEnv) -> None:
    pipe.env_config("test").update({"tests": False, "smoke": []})
    pipe.write_config()
    make_bundle(pipe, 1)
    ok(pipe.mlcd("deploy", "--env", "test"))
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert [f["outcome"] for f in finals(pipe, "test")] == ["SUCCEEDED"]


def test_smoke_failure_reports_and_repeated_rollback(pipe: PipelineEnv) -> None:
    good = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    ok(pipe.mlcd("smoke", "--env", "test"))
    pipe.set_design_variables(fail_smoke=True)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert pipe.mlcd("smoke", "--env", "test").returncode == 4
    result = stage(pipe, "smoke-test")
    folder = pipe.out_dir / "reports" / "test"
    assert str(folder / "smoke-after-rollback.xml") in result["reports"]
    assert str(folder / "smoke-after-rollback.html") in result["reports"]
    after = etree.parse(str(folder / "smoke-after-rollback.xml")).getroot()
    assert [c.get("name") for c in after.iter("testcase")] == ["TEST_SMOKE"]
    props = {p.get("name"): p.get("value") for p in etree.parse(str(folder / "smoke.xml")).iter("property")}
    assert props["rolledBackTo"] == good and props["outcome"] == "ROLLED_BACK"
    assert result["links"]["smokeAfterRollbackReport"].endswith("smoke-after-rollback.html")

    # the gate refuses to test the old bundle and report it as this run's
    proc = pipe.mlcd("smoke", "--env", "test")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{good} is active on test, not this run's {bad}: deploy first" in proc.stderr
    assert pipe.mlcd("test", "--env", "test").returncode == 2

    # rolling back again is a no-op, with no new final record
    count = len(finals(pipe, "test"))
    again = ok(pipe.mlcd("rollback", "--env", "test"))
    assert stage(pipe, "rollback-test")["outcome"] == "NOOP"
    assert f"already rolled back to {good}" in again.stdout
    assert len(finals(pipe, "test")) == count
    assert active_on(pipe, "test") == good


def test_rollback_to_a_bundle_failing_smoke_names_it(pipe: PipelineEnv) -> None:
    pipe.set_design_variables(fail_smoke=True)
    bad = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    pipe.set_design_variables(fail_smoke=False)
    make_bundle(pipe, 2)
    ok(pipe.mlcd("deploy", "--env", "test"))
    proc = pipe.mlcd("rollback", "--env", "test", "--to", bad)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"bundle {bad} fails its smoke check" in proc.stderr
    assert "the previous bundle is unhealthy too" not in proc.stderr
    result = stage(pipe, "rollback-test")
    assert result["details"]["rolledBackTo"] == bad
    assert any(r.endswith("smoke-after-rollback.xml") for r in result["reports"])


def test_gate_error_on_a_fresh_deploy_is_rolled_back(pipe: PipelineEnv) -> None:
    good = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    ok(pipe.mlcd("smoke", "--env", "test"))
    make_bundle(pipe, 2)
    ok(pipe.mlcd("deploy", "--env", "test"))
    pipe.automation["test"].set_faults(
        {"seed": 1, "rules": [{"method": "GET", "path": "scenarios/$", "status": 500, "times": 1}]}
    )
    proc = pipe.mlcd("smoke", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "smoke on test could not complete" in proc.stderr
    assert active_on(pipe, "test") == good
    assert stage(pipe, "smoke-test")["details"]["rolledBackTo"] == good
    assert finals(pipe, "test")[-1]["outcome"] == "FAILED_ROLLED_BACK"


def test_unreachable_node_during_the_gate_needs_attention(pipe: PipelineEnv) -> None:
    make_bundle(pipe, 1)
    ok(pipe.mlcd("deploy", "--env", "test"))
    pipe.automation["test"].stop()
    proc = pipe.mlcd("smoke", "--env", "test")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "smoke on test could not complete" in line and "cannot be reached" in line
    assert "retrying in" in proc.stdout  # the retries were not silent
    assert finals(pipe, "test")[-1]["outcome"] == "FAILED_NEEDS_ATTENTION"


@pytest.mark.xdist_group("serial")  # timing: their run must still be running when our smoke starts
def test_smoke_waits_for_a_run_it_did_not_start_and_sigterm_aborts_its_own(pipe: PipelineEnv) -> None:
    pipe.env_config("test")["smoke"] = ["TEST_SLOW"]
    pipe.write_config()
    pipe.set_design_variables(slow_seconds=5)  # covers `mlcd smoke` starting up on a loaded machine
    make_bundle(pipe, 1)
    ok(pipe.mlcd("deploy", "--env", "test"))
    node = node_of(pipe, "test")
    try:
        node.run_scenario(pipe.project_key, "TEST_SLOW")  # someone else's run
        proc = ok(pipe.mlcd("smoke", "--env", "test"))
        assert "TEST_SLOW already running on the node" in proc.stdout
        assert len(node.get_last_runs(pipe.project_key, "TEST_SLOW")) == 2  # theirs, then ours

        pipe.set_design_variables(slow_seconds=120)
        make_bundle(pipe, 2)
        ok(pipe.mlcd("deploy", "--env", "test"))
        smoke = subprocess.Popen(
            [sys.executable, "-m", "mlcd", "smoke", "--env", "test"],
            cwd=pipe.root, env=pipe.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            give_up = time.monotonic() + 60
            while not any(s.get("running") for s in node.list_scenarios(pipe.project_key)):
                assert smoke.poll() is None and time.monotonic() < give_up
                time.sleep(0.1)
            smoke.send_signal(signal.SIGTERM)
            out, _err = smoke.communicate(timeout=60)
        finally:
            if smoke.poll() is None:
                smoke.kill()
                smoke.wait()
        assert smoke.returncode == 143
        assert "aborted the scenario run(s) this command started: TEST_SLOW" in out
        listed = {s["id"]: s for s in node.list_scenarios(pipe.project_key)}
        assert not listed["TEST_SLOW"]["running"]  # nothing left running unattended
        runs = node.get_last_runs(pipe.project_key, "TEST_SLOW")
        assert all(r["result"]["outcome"] == "ABORTED" for r in runs[:-2])  # ours, if it had started
    finally:
        node.close()


def test_error_in_the_activation_report_is_a_failed_activation(pipe: PipelineEnv) -> None:
    good = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    ok(pipe.mlcd("smoke", "--env", "test"))
    make_bundle(pipe, 2)
    broken = [{"severity": "ERROR", "message": "plugin geo is missing"}]
    edit_node_json(pipe, "test", activationMessages=broken)
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "activation error: plugin geo is missing" in proc.stdout
    assert "reported 1 error(s): plugin geo is missing" in proc.stderr
    assert active_on(pipe, "test") == good
    result = stage(pipe, "deploy-test")
    assert result["outcome"] == "ROLLED_BACK" and result["details"]["rolledBackTo"] == good
    assert finals(pipe, "test")[-1]["outcome"] == "FAILED_ROLLED_BACK"
