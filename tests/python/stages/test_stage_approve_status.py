"""`mlcd approve` and `mlcd status` through the real CLI against stand-in nodes."""

from __future__ import annotations

import json

from support.pipeline_env import APPROVAL_KEY_ENV, PipelineEnv, enable_approval_signing


def test_approve_records_approver_bound_to_the_bundle_bytes(pipeline: PipelineEnv) -> None:
    assert pipeline.mlcd("bundle").returncode == 0
    proc = pipeline.mlcd("approve", "--env", "prod", "--approver", "alice", "--comment", "CAB-123 ok")
    assert proc.returncode == 0, proc.stderr
    record = pipeline.run_record()
    approval = record["environments"]["prod"]["approval"]
    assert approval["approver"] == "alice" and approval["comment"] == "CAB-123 ok"
    assert approval["bundleId"] == record["bundleId"] and approval["sha256"] == record["sha256"]
    assert approval["time"].endswith("Z")
    assert record["environments"]["prod"]["approvedBy"] == "alice"
    (audit,) = [r for r in pipeline.audit_records() if r["operation"] == "approve"]
    assert audit["environment"] == "prod" and audit["sha256"] == record["sha256"]
    assert audit["detail"]["approver"] == "alice"
    assert pipeline.stage_file("approve-prod")["outcome"] == "SUCCESS"
    assert "alice approved bundle" in proc.stdout


def test_approve_unknown_env_and_missing_run_record(pipeline: PipelineEnv) -> None:
    proc = pipeline.mlcd("approve", "--env", "prd", "--approver", "alice")
    assert proc.returncode == 2 and "did you mean 'prod'" in proc.stderr
    proc = pipeline.mlcd("approve", "--env", "prod", "--approver", "alice")
    assert proc.returncode == 2 and "mlcd bundle" in proc.stderr


def test_approval_lets_deploy_proceed_on_an_approval_env(pipeline: PipelineEnv) -> None:
    pipeline.env_config("prod")["approval"] = True
    pipeline.write_config()
    assert pipeline.mlcd("bundle").returncode == 0
    refused = pipeline.mlcd("deploy", "--env", "prod")
    assert refused.returncode == 2, refused.stderr
    assert pipeline.mlcd("approve", "--env", "prod", "--approver", "bob").returncode == 0
    deployed = pipeline.mlcd("deploy", "--env", "prod")
    assert deployed.returncode == 0, deployed.stderr


def test_status_before_and_after_deploy_and_tests(pipeline: PipelineEnv) -> None:
    before = pipeline.mlcd("status", "--env", "test")
    assert before.returncode == 0, before.stderr
    assert "project not deployed yet" in before.stdout
    assert pipeline.stage_file("status-test")["details"]["deployed"] is False

    pipeline.set_design_variables(fail_test=True, slow_seconds=0.2)
    assert pipeline.mlcd("bundle").returncode == 0
    assert pipeline.mlcd("deploy", "--env", "test").returncode == 0
    assert pipeline.mlcd("test", "--env", "test").returncode == 3  # TEST_FAIL_ON_VAR fails on purpose
    bundle_id = pipeline.run_record()["bundleId"]

    after = pipeline.mlcd("status", "--env", "test")
    assert after.returncode == 0, after.stderr
    assert f"Active bundle: {bundle_id}" in after.stdout
    details = pipeline.stage_file("status-test")["details"]
    assert details["activeBundleId"] == bundle_id
    assert [b["bundleId"] for b in details["importedBundles"]] == [bundle_id]
    assert details["importedBundles"][0]["importedOn"] != "-"
    outcomes = {t["scenario"]: t["outcome"] for t in details["lastTests"]}
    assert outcomes["TEST_PASS"] == "SUCCESS"
    assert outcomes["TEST_FAIL_ON_VAR"] == "FAILED"
    assert outcomes["TEST_SMOKE"] == "NEVER RUN"
    line = next(line for line in after.stdout.splitlines() if line.startswith("TEST_FAIL_ON_VAR"))
    assert "FAILED" in line


def test_status_keeps_the_failed_release_results_after_a_rollback(pipeline: PipelineEnv) -> None:
    pipeline.set_design_variables(slow_seconds=0.1)
    assert pipeline.mlcd("bundle", "--build-number", "1").returncode == 0
    good = pipeline.run_record()["bundleId"]
    assert pipeline.mlcd("deploy", "--env", "test").returncode == 0
    pipeline.set_design_variables(fail_smoke=True, slow_seconds=0.1)
    assert pipeline.mlcd("bundle", "--build-number", "2").returncode == 0
    bad = pipeline.run_record()["bundleId"]
    assert pipeline.mlcd("deploy", "--env", "test").returncode == 0
    assert pipeline.mlcd("smoke", "--env", "test").returncode == 4  # rolled back to the good one

    proc = pipeline.mlcd("status", "--env", "test")
    assert proc.returncode == 0, proc.stderr
    details = pipeline.stage_file("status-test")["details"]
    assert details["activeBundleId"] == good
    results = {(r["gate"], r["scenario"]): r for r in details["runResults"]}
    assert results[("smoke", "TEST_SMOKE")]["outcome"] == "FAILED"
    assert results[("smoke", "TEST_SMOKE")]["bundleId"] == bad
    assert results[("smoke-after-rollback", "TEST_SMOKE")]["outcome"] == "SUCCESS"
    assert f"This run's results on test (bundle {bad}" in proc.stdout
    lines = proc.stdout.splitlines()
    line = next(line for line in lines if line.startswith("smoke ") and "TEST_SMOKE" in line)
    assert "FAILED" in line


# -- signed approvals (issue 12, finding 2) ----------------------------------------------------------
def _approval_env(pipeline: PipelineEnv) -> None:
    pipeline.env_config("prod")["approval"] = True
    pipeline.write_config()
    enable_approval_signing(pipeline)
    assert pipeline.mlcd("bundle").returncode == 0


def test_signed_approval_lets_deploy_proceed_and_is_audited(pipeline: PipelineEnv) -> None:
    _approval_env(pipeline)
    assert pipeline.mlcd("approve", "--env", "prod", "--approver", "bob").returncode == 0
    approval = pipeline.run_record()["environments"]["prod"]["approval"]
    assert approval["signature"]["alg"] == "ed25519" and approval["environment"] == "prod"
    (audit,) = [r for r in pipeline.audit_records() if r["operation"] == "approve"]
    assert audit["detail"]["signed"] is True and audit["detail"]["approvalKeyId"]
    deploy = pipeline.mlcd("deploy", "--env", "prod", extra_env={APPROVAL_KEY_ENV: ""})  # deploy has no key
    assert deploy.returncode == 0, deploy.stderr


def test_hand_written_approval_is_refused_by_deploy(pipeline: PipelineEnv) -> None:
    _approval_env(pipeline)
    record = pipeline.run_record()
    record["environments"]["prod"] = {
        "approvedBy": "mallory",
        "approvedSha256": record["sha256"],
        "approval": {"approver": "mallory", "sha256": record["sha256"]},
    }
    (pipeline.out_dir / "run.json").write_text(json.dumps(record))
    proc = pipeline.mlcd("deploy", "--env", "prod")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "the approval of environment 'prod' in the run record is not signed" in line
    assert "nothing was deployed" in line
    assert pipeline.stage_file("deploy-prod")["outcome"] == "FAILED"
    assert not [
        r for r in pipeline.audit_records() if r["environment"] == "prod" and r["operation"] != "deployment"
    ]


def test_edited_signed_approval_is_refused(pipeline: PipelineEnv) -> None:
    _approval_env(pipeline)
    assert pipeline.mlcd("approve", "--env", "prod", "--approver", "bob").returncode == 0
    record = pipeline.run_record()
    record["environments"]["prod"]["approval"]["approver"] = "the-cto"
    (pipeline.out_dir / "run.json").write_text(json.dumps(record))
    proc = pipeline.mlcd("deploy", "--env", "prod")
    assert proc.returncode == 2 and "signature that does not match it" in proc.stderr


def test_approve_needs_the_right_approval_key(pipeline: PipelineEnv) -> None:
    _approval_env(pipeline)
    unset = pipeline.mlcd("approve", "--env", "prod", "--approver", "bob", extra_env={APPROVAL_KEY_ENV: ""})
    assert unset.returncode == 2 and "MLCD_APPROVAL_KEY is not set" in unset.stderr
    other = "11" * 32
    wrong = pipeline.mlcd(
        "approve", "--env", "prod", "--approver", "bob", extra_env={APPROVAL_KEY_ENV: other}
    )
    assert wrong.returncode == 2 and "is not the one whose public key is in" in wrong.stderr
    assert other not in wrong.stdout + wrong.stderr
    assert "approval" not in pipeline.run_record()["environments"].get("prod", {})


def test_approver_with_control_characters_is_refused(pipeline: PipelineEnv) -> None:
    assert pipeline.mlcd("bundle").returncode == 0
    proc = pipeline.mlcd("approve", "--env", "prod", "--approver", "bob\x1b[2Kalice")
    assert proc.returncode == 2 and "control character" in proc.stderr
    assert "prod" not in pipeline.run_record()["environments"]
