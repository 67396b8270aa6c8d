"""Integration tests: the real `mlcd` CLI against stand-in nodes over loopback (no mocking of mlcd).

Each test checks what a user sees (exit code, stage files, reports, audit trail)
and the state of the automation node itself (its active bundle).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lxml import etree

from support.flowtools import active_on, deployments, make_bundle, stage
from support.pipeline_env import PipelineEnv, key_env_name


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def release(pipe: PipelineEnv, env: str, build: int) -> str:
    """Bundle build ``build`` and deploy + test + smoke it to ``env``; return its bundle id."""
    bundle_id = str(make_bundle(pipe, build)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", env))
    ok(pipe.mlcd("smoke", "--env", env))
    return bundle_id


def test_good_bundle_reaches_prod(pipe: PipelineEnv) -> None:
    pipe.env_config("prod")["approval"] = True
    pipe.write_config()
    proc = ok(pipe.mlcd("run", "--approve", "prod", "--approver", "ann", "--build-number", "11"))
    bundle_id = pipe.run_record()["bundleId"]
    assert active_on(pipe, "test") == bundle_id and active_on(pipe, "prod") == bundle_id
    summary = stage(pipe, "pipeline")
    assert summary["outcome"] == "SUCCESS" and summary["exitCode"] == 0
    order = [(s["stage"], s["environment"]) for s in summary["details"]["stages"]]
    assert order == [
        ("validate", None), ("bundle", None),
        ("deploy", "test"), ("test", "test"), ("smoke", "test"),
        ("approve", "prod"), ("deploy", "prod"), ("test", "prod"), ("smoke", "prod"),
    ]
    for name in ("deploy-test", "test-test", "smoke-test", "approve-prod", "deploy-prod", "smoke-prod"):
        assert stage(pipe, name)["exitCode"] == 0
    assert "=== stage 3: deploy on test ===" in proc.stdout
    assert deployments(pipe, "test") == ["SUCCEEDED"] and deployments(pipe, "prod") == ["SUCCEEDED"]
    suites = etree.parse(str(pipe.out_dir / "reports" / "test" / "tests.xml")).getroot()
    names = sorted(str(c.get("name")) for c in suites.iter("testcase"))
    assert names == ["TEST_FAIL_ON_VAR", "TEST_PASS", "TEST_SLOW"]
    assert (pipe.out_dir / "reports" / "test" / "report.html").is_file()
    ops = [r["operation"] for r in pipe.audit_records() if r["environment"] == "prod"]
    for op in ("record_previous", "create_project_from_bundle", "preload", "activate", "verify"):
        assert op in ops
    assert "run_scenario" in ops


def test_failing_test_gate_rolls_test_back_and_leaves_prod_untouched(pipe: PipelineEnv) -> None:
    ok(pipe.mlcd("run", "--build-number", "1"))
    good = pipe.run_record()["bundleId"]
    pipe.set_design_variables(fail_test=True)
    proc = pipe.mlcd("run", "--build-number", "2")
    bad = pipe.run_record()["bundleId"]
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert bad != good
    assert active_on(pipe, "test") == good and active_on(pipe, "prod") == good
    test_stage = stage(pipe, "test-test")
    assert (test_stage["outcome"], test_stage["exitCode"]) == ("ROLLED_BACK", 3)
    assert "TEST_FAIL_ON_VAR" in test_stage["message"]
    summary = stage(pipe, "pipeline")
    assert summary["exitCode"] == 3 and summary["details"]["environmentsUntouched"] == ["prod"]
    assert deployments(pipe, "test") == ["SUCCEEDED", "FAILED_ROLLED_BACK"]
    assert deployments(pipe, "prod") == ["SUCCEEDED"]
    prod_after = [r for r in pipe.audit_records() if r["environment"] == "prod" and r["bundleId"] == bad]
    assert prod_after == []
    xml = etree.parse(str(pipe.out_dir / "reports" / "test" / "tests.xml")).getroot()
    [failed] = [c for c in xml.iter("testcase") if c.find("failure") is not None]
    text = etree.tostring(failed, encoding="unicode")
    assert failed.get("name") == "TEST_FAIL_ON_VAR" and "Quality gate" in text
    assert pipe.run_record()["environments"]["test"]["state"] == "ROLLED_BACK"


def test_smoke_failure_is_rolled_back_and_verified_on_the_node(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    pipe.set_design_variables(fail_smoke=True)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert active_on(pipe, "test") == bad
    proc = pipe.mlcd("smoke", "--env", "test")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert active_on(pipe, "test") == good
    result = stage(pipe, "smoke-test")
    assert result["outcome"] == "ROLLED_BACK" and result["details"]["rolledBackTo"] == good
    assert "rolled back test to" in proc.stderr and "verified active" in proc.stderr
    assert deployments(pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    assert pipe.run_record()["environments"]["test"]["previousBundleId"] == good
    xml = etree.parse(str(pipe.out_dir / "reports" / "test" / "smoke.xml")).getroot()
    assert [c.get("name") for c in xml.iter("testcase")] == ["TEST_SMOKE"]
    # deploying it again re-uses the imported bundle (no second import)
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert active_on(pipe, "test") == bad
    records = pipe.audit_records()
    imports = [r["outcome"] for r in records if r["operation"] == "import" and r["bundleId"] == bad]
    assert imports == ["SUCCESS", "SKIPPED"]


def test_first_deploy_smoke_failure_has_nothing_to_roll_back_to(pipe: PipelineEnv) -> None:
    pipe.set_design_variables(fail_smoke=True)
    bad = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    proc = pipe.mlcd("smoke", "--env", "test")
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert "no previous bundle to roll back to" in proc.stderr and "first deploy" in proc.stderr
    assert active_on(pipe, "test") == bad  # never left without an active bundle
    result = stage(pipe, "smoke-test")
    assert result["outcome"] == "NOTHING_TO_ROLL_BACK"
    assert deployments(pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
    assert pipe.run_record()["environments"]["test"]["state"] == "NEEDS_ATTENTION"
    again = pipe.mlcd("rollback", "--env", "test")
    assert again.returncode == 7 and active_on(pipe, "test") == bad


def test_plan_changes_nothing(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    new = str(make_bundle(pipe, 2)["bundleId"])
    for args in (("plan", "--env", "test"), ("deploy", "--env", "test", "--plan")):
        proc = ok(pipe.mlcd(*args))
        assert f"active bundle now:   {good}" in proc.stdout and f"active bundle after: {new}" in proc.stdout
        assert "tests that would run: TEST_FAIL_ON_VAR, TEST_PASS, TEST_SLOW" in proc.stdout
    assert active_on(pipe, "test") == good
    plan = stage(pipe, "plan-test")["details"]["plan"]
    assert plan["active_now"] == good and plan["already_imported"] is False
    [conn] = plan["connections"]
    assert conn == {"required": "warehouse", "afterRemapping": "warehouse_test", "available": True}
    prod_plan = ok(pipe.mlcd("plan", "--env", "prod"))
    assert "will be created from the bundle" in prod_plan.stdout
    assert stage(pipe, "plan-prod")["details"]["plan"]["project_exists"] is False
    assert active_on(pipe, "prod") is None
    on_nodes = [r for r in pipe.audit_records() if r["bundleId"] == new and r["environment"]]
    assert on_nodes == []


def test_archive_with_other_bytes_is_refused_and_nothing_changes(pipe: PipelineEnv) -> None:
    record = make_bundle(pipe, 1)
    with Path(record["archive"]).open("ab") as fh:
        fh.write(b"\0tampered")
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 2 and "sha256" in proc.stderr and "Traceback" not in proc.stderr
    assert stage(pipe, "deploy-test")["outcome"] == "FAILED"
    assert active_on(pipe, "test") is None


def test_missing_approval_stops_before_prod(pipe: PipelineEnv) -> None:
    pipe.env_config("prod")["approval"] = True
    pipe.write_config()
    proc = pipe.mlcd("run", "--build-number", "3")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--approve prod" in proc.stderr
    bundle_id = pipe.run_record()["bundleId"]
    assert active_on(pipe, "test") == bundle_id and active_on(pipe, "prod") is None
    assert deployments(pipe, "test") == ["SUCCEEDED"] and deployments(pipe, "prod") == ["FAILED_UNCHANGED"]
    direct = pipe.mlcd("deploy", "--env", "prod")
    assert direct.returncode == 2 and "approval" in direct.stderr and active_on(pipe, "prod") is None
    ok(pipe.mlcd("approve", "--env", "prod", "--approver", "ann"))
    ok(pipe.mlcd("deploy", "--env", "prod"))
    assert active_on(pipe, "prod") == bundle_id


def test_redeploying_the_active_bundle_is_a_reported_noop(pipe: PipelineEnv) -> None:
    bundle_id = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    before = len(pipe.audit_records())
    proc = ok(pipe.mlcd("deploy", "--env", "test"))
    assert "already active" in proc.stdout
    result = stage(pipe, "deploy-test")
    assert result["outcome"] == "NOOP" and result["exitCode"] == 0
    ops = [r["operation"] for r in pipe.audit_records()[before:]]
    assert "activate" not in ops and "import" not in ops and "create_project_from_bundle" not in ops
    assert active_on(pipe, "test") == bundle_id
    assert pipe.run_record()["environments"]["test"]["previousBundleId"] is None


def test_explicit_rollback_reactivates_the_previous_bundle_and_reruns_smoke(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    newer = release(pipe, "test", 2)
    assert active_on(pipe, "test") == newer
    missing = pipe.mlcd("rollback", "--env", "test", "--to", "NOPE_b0")
    assert missing.returncode == 2 and active_on(pipe, "test") == newer
    proc = ok(pipe.mlcd("rollback", "--env", "test", "--reason", "bad predictions"))
    assert active_on(pipe, "test") == good
    result = stage(pipe, "rollback-test")
    assert result["outcome"] == "ROLLED_BACK" and result["details"]["smoke"] == ["TEST_SMOKE"]
    assert "smoke passed" in proc.stdout
    ok(pipe.mlcd("rollback", "--env", "test", "--to", newer))
    assert active_on(pipe, "test") == newer


HOLD_LOCK = (
    "import sys\nfrom mlcd.locking import deploy_lock\n"
    "with deploy_lock('SAMPLE', sys.argv[1], 5, build_url='http://ci/job/41/', command='deploy'):\n"
    "    print('held', flush=True)\n    sys.stdin.readline()\n"
)


def hold_lock(pipe: PipelineEnv, env: str) -> subprocess.Popen[str]:
    """Another process holding ``env``'s deploy lock (until killed)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, env], env=pipe.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_second_deploy_waits_for_the_lock_then_times_out(pipe: PipelineEnv) -> None:
    make_bundle(pipe, 1)
    holder = hold_lock(pipe, "test")
    try:
        proc = pipe.mlcd("deploy", "--env", "test", "--lock-timeout", "1")
        assert proc.returncode == 9, proc.stdout + proc.stderr
        # the holder is shown while waiting, and in the error
        assert f"pid {holder.pid}" in proc.stdout and "http://ci/job/41/" in proc.stdout
        assert f"pid {holder.pid}" in proc.stderr and "nothing was changed" in proc.stderr
        assert stage(pipe, "deploy-test")["outcome"] == "FAILED"
        assert active_on(pipe, "test") is None
        assert deployments(pipe, "test") == ["FAILED_UNCHANGED"]
    finally:
        holder.kill()
        holder.wait()
    ok(pipe.mlcd("deploy", "--env", "test", "--lock-timeout", "1"))


def test_run_waits_for_the_environment_lock_then_stops_before_it(pipe: PipelineEnv) -> None:
    pipe.env_config("prod")["timeouts"] = {"scenario": 60, "deploy": 60, "lock": 1}
    pipe.write_config()
    holder = hold_lock(pipe, "prod")
    try:
        proc = pipe.mlcd("run", "--build-number", "1")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 9, proc.stdout + proc.stderr
    bundle_id = pipe.run_record()["bundleId"]
    assert active_on(pipe, "test") == bundle_id and active_on(pipe, "prod") is None
    failed, unwound = stage(pipe, "pipeline")["details"]["stages"][-2:]
    assert (failed["stage"], failed["environment"], failed["exitCode"]) == ("deploy", "prod", 9)
    assert f"pid {holder.pid}" in failed["message"]
    # test was this run's first deploy there: nothing to go back to, so it is kept (and says so)
    assert (unwound["stage"], unwound["environment"], unwound["outcome"]) == ("unwind", "test", "KEPT")


def test_api_keys_never_appear_in_output_or_files(pipe: PipelineEnv) -> None:
    pipe.env_config("prod")["approval"] = True
    pipe.write_config()
    outputs: list[str] = []

    def run(*args: str, env: dict[str, str] | None = None) -> int:
        proc = pipe.mlcd(*args, extra_env=env)
        outputs.extend([proc.stdout, proc.stderr])
        return int(proc.returncode)

    assert run("run", "--build-number", "1") == 2  # stops before prod: no approval
    assert run("plan", "--env", "prod") == 0
    assert run("approve", "--env", "prod", "--approver", "ann") == 0
    assert run("deploy", "--env", "prod") == 0
    assert run("status", "--env", "prod") == 0
    assert run("rollback", "--env", "prod") == 7
    pipe.set_design_variables(fail_test=True, fail_smoke=True)
    assert run("bundle", "--build-number", "2") == 0
    assert run("deploy", "--env", "test") == 0
    assert run("test", "--env", "test") == 3
    assert run("deploy", "--env", "test") == 0
    assert run("smoke", "--env", "test") == 4
    wrong = "WRONGKEY-" + "f3a9c2" * 5
    assert run("deploy", "--env", "test", env={key_env_name("test"): wrong}) == 6
    assert run("test", "--env", "test", "--debug", env={key_env_name("test"): wrong}) == 6
    secrets = [*pipe.keys.values(), wrong]
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    files = [p for p in pipe.out_dir.rglob("*") if p.is_file()] + [pipe.config_path]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:6]}… found in {path}"


def test_activation_refused_leaves_the_environment_unchanged(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    pipe.env_config("test")["connection_remappings"] = {"warehouse": "no_such_connection"}
    pipe.write_config()
    make_bundle(pipe, 2)
    planned = ok(pipe.mlcd("plan", "--env", "test"))  # the plan already says it
    assert "connection warehouse -> no_such_connection: MISSING" in planned.stdout
    assert stage(pipe, "plan-test")["details"]["plan"]["missing_connections"] == ["no_such_connection"]
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "unchanged" in proc.stderr and good in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "no_such_connection" in line and "(fix: " in line and "connection_remappings" in line
    assert active_on(pipe, "test") == good
    assert deployments(pipe, "test")[-1] == "FAILED_UNCHANGED"
    entry = pipe.run_record()["environments"]["test"]
    assert entry["state"] == "UNCHANGED" and entry["previousBundleId"] == good


def test_gate_policy_flaky_retries_timeouts_and_warnings_through_the_cli(pipe: PipelineEnv) -> None:
    cfg = pipe.env_config("test")
    cfg.update(
        flaky={"TEST_FAIL_ON_VAR": 1},
        warning="pass",
        rollback_on_failure=False,
        timeouts={"scenario": 3, "deploy": 60, "lock": 10},
    )
    pipe.write_config()
    pipe.set_design_variables(fail_test=True, warn_test=True, slow_seconds=30)
    make_bundle(pipe, 1)
    ok(pipe.mlcd("deploy", "--env", "test"))
    proc = pipe.mlcd("test", "--env", "test")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    result = stage(pipe, "test-test")
    assert result["outcome"] == "GATE_FAILED"
    expected = {"TEST_FAIL_ON_VAR": "FAILED", "TEST_PASS": "WARNING", "TEST_SLOW": "TIMEOUT"}
    assert result["details"]["cases"] == expected
    xml = etree.parse(str(pipe.out_dir / "reports" / "test" / "tests.xml")).getroot()
    cases = {str(c.get("name")): etree.tostring(c, encoding="unicode") for c in xml.iter("testcase")}
    assert "<failure" not in cases["TEST_PASS"] and "<error" not in cases["TEST_PASS"]  # WARNING passes here
    assert "<failure" in cases["TEST_FAIL_ON_VAR"] and "<rerunFailure" in cases["TEST_FAIL_ON_VAR"]
    assert "<error" in cases["TEST_SLOW"] and "rerun" not in cases["TEST_SLOW"]
    attempts = [r for r in pipe.audit_records()
                if r["operation"] == "run_scenario" and r["detail"]["scenario"] == "TEST_FAIL_ON_VAR"]
    assert [r["detail"]["attempt"] for r in attempts] == [1, 2]  # retried once, still failed
    slow = [r for r in pipe.audit_records()
            if r["operation"] == "run_scenario" and r["detail"]["scenario"] == "TEST_SLOW"]
    assert [r["outcome"] for r in slow] == ["TIMEOUT"]  # not flaky: never retried
    assert deployments(pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"  # not rolled back, by config


def test_concurrent_activation_is_detected_before_activating(pipe: PipelineEnv) -> None:
    from mlcd.dss.node import DSSNode

    first = release(pipe, "test", 1)
    second = release(pipe, "test", 2)
    third = str(make_bundle(pipe, 3)["bundleId"])
    node = pipe.automation["test"]
    node.reset_stats()
    node.set_faults({"seed": 1, "rules": [{"method": "POST", "path": "actions/preload", "latency": 2.0}]})
    deploy = subprocess.Popen(
        [sys.executable, "-m", "mlcd", "deploy", "--env", "test"],
        cwd=pipe.root, env=pipe.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for_route(pipe, "test", "preload", deploy)  # the deploy is preloading
        racer = DSSNode(node.url, pipe.keys[key_env_name("test")], name="racer")
        racer.activate_bundle(pipe.project_key, first, connection_remappings={"warehouse": "warehouse_test"})
        racer.close()
        out, err = deploy.communicate(timeout=120)
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
        node.clear_faults()
    assert deploy.returncode == 8, out + err
    assert "another deployment raced" in err and "nothing was activated" in err
    assert active_on(pipe, "test") == first  # the racer's choice stands; ours was not activated
    assert third not in [r["bundleId"] for r in pipe.audit_records() if r["operation"] == "activate"]
    assert pipe.run_record()["environments"]["test"]["previousBundleId"] == second


def _wait_for_route(pipe: PipelineEnv, env: str, fragment: str, proc: subprocess.Popen[str]) -> None:
    import time

    give_up = time.monotonic() + 60
    while not any(fragment in r for r in pipe.automation[env].stats()["routes"]):
        assert proc.poll() is None and time.monotonic() < give_up
        time.sleep(0.05)


def test_failed_verification_after_activation_is_rolled_back(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    node = pipe.automation["test"]
    node.reset_stats()
    node.set_faults({"seed": 1, "rules": [{"method": "POST", "path": "actions/activate", "latency": 1.5}]})
    deploy = subprocess.Popen(
        [sys.executable, "-m", "mlcd", "deploy", "--env", "test"],
        cwd=pipe.root, env=pipe.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for_route(pipe, "test", "actions/activate", deploy)
        # while DSS activates, make the next read of the active bundle fail: the result is unverified
        rule = {"method": "GET", "path": "/projects/$", "status": 500, "times": 1}
        node.set_faults({"seed": 1, "rules": [rule]})
        out, err = deploy.communicate(timeout=120)
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
        node.clear_faults()
    assert deploy.returncode == 4, out + err
    assert "verification failed" in err and f"rolled back to {good}" in err
    assert active_on(pipe, "test") == good
    assert stage(pipe, "deploy-test")["outcome"] == "ROLLED_BACK"
    assert deployments(pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    verifies = [r for r in pipe.audit_records() if r["operation"] == "verify" and r["environment"] == "test"]
    assert [(r["bundleId"], r["outcome"]) for r in verifies[-2:]] == [(bad, "FAILED"), (good, "SUCCESS")]


def test_unreachable_node_is_an_infrastructure_error_not_a_gate_failure(pipe: PipelineEnv) -> None:
    make_bundle(pipe, 1)
    ok(pipe.mlcd("deploy", "--env", "test"))
    pipe.automation["test"].stop()
    # the first gate after this run's deploy says the new bundle is unchecked and a person must act (5);
    # after that the environment needs attention and the node error keeps its own code (6)
    expected = (("test", 5, "ROLLBACK_FAILED"), ("smoke", 6, "FAILED"), ("deploy", 6, "FAILED"))
    for command, code, outcome in expected:
        proc = pipe.mlcd(command, "--env", "test")
        assert proc.returncode == code, proc.stdout + proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith(f"mlcd {command}: error: ")]
        assert "Traceback" not in proc.stderr and len(errors) == 1 and "(fix: " in errors[0]
        assert stage(pipe, f"{command}-test")["outcome"] == outcome
        if command == "test":
            assert deployments(pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
            assert "cannot be reached" in errors[0]
    assert deployments(pipe, "test")[-1] == "FAILED_UNCHANGED"


def test_deploy_past_its_deadline_stops_before_activating(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    pipe.env_config("test")["timeouts"] = {"scenario": 60, "deploy": 0.2, "lock": 10}
    pipe.write_config()
    make_bundle(pipe, 2)
    pipe.automation["test"].set_faults(
        {"seed": 1, "rules": [{"method": "POST", "path": "actions/preload", "latency": 0.5}]}
    )
    proc = pipe.mlcd("deploy", "--env", "test")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "timeouts.deploy" in proc.stderr and "unchanged" in proc.stderr
    assert active_on(pipe, "test") == good


def test_node_error_while_testing_a_new_bundle_rolls_it_back(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    rule = {"method": "GET", "path": r"/scenarios/TEST_PASS/[0-9][0-9-]+/$", "status": 500, "times": 1}
    pipe.automation["test"].set_faults({"seed": 1, "rules": [rule]})
    proc = pipe.mlcd("test", "--env", "test")
    pipe.automation["test"].clear_faults()
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "tests on test could not complete" in proc.stderr and f"rolled back test to {good}" in proc.stderr
    assert active_on(pipe, "test") == good
    assert deployments(pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    said = [r for r in pipe.audit_records() if r["operation"] == "run_scenario" and r["bundleId"] == bad]
    assert {r["detail"]["scenario"] for r in said} == {"TEST_FAIL_ON_VAR", "TEST_PASS", "TEST_SLOW"}


def test_node_error_while_testing_without_rollback_needs_attention(pipe: PipelineEnv) -> None:
    pipe.env_config("test")["rollback_on_failure"] = False
    pipe.write_config()
    release(pipe, "test", 1)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    rule = {"method": "GET", "path": r"/scenarios/TEST_PASS/[0-9][0-9-]+/$", "status": 500, "times": 1}
    pipe.automation["test"].set_faults({"seed": 1, "rules": [rule]})
    proc = pipe.mlcd("test", "--env", "test")
    pipe.automation["test"].clear_faults()
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert active_on(pipe, "test") == bad and f"bundle {bad} stays active" in proc.stderr
    assert deployments(pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
