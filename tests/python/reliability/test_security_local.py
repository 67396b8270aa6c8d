"""Security, local attacks (issue 12): each test plays an attacker who can write somewhere mlcd reads
(the lock directory, the audit trail, the artifact repository, the run record) and checks that mlcd
fails safe: the documented exit code, one line on stderr, nothing deployed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlcd.locking import lock_path
from support.artifact_server import ArtifactServer, nginx_available
from support.pipeline_env import PipelineEnv, enable_approval_signing
from support.reltools import node_state, one_line_error, record_result


def test_symlinked_deploy_lock_is_refused_and_its_target_kept(rpipe: PipelineEnv, tmp_path: Path) -> None:
    """Finding 6: a pre-created lock symlink made the deploy truncate the file it points to."""
    assert rpipe.mlcd("bundle").returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("a file the CI user can write\n")
    locks = Path(rpipe.env["MLCD_LOCK_DIR"])
    locks.mkdir(mode=0o700, exist_ok=True)
    lock_path(rpipe.project_key, "test", locks).symlink_to(victim)
    before = node_state(rpipe)
    proc = rpipe.mlcd("deploy", "--env", "test")
    line = one_line_error(proc.stderr)
    ok = (
        proc.returncode == 2
        and "symbolic link" in line
        and victim.read_text() == "a file the CI user can write\n"
        and node_state(rpipe) == before
    )
    record_result("security_local", case="lock-symlink", passed=ok)
    assert proc.returncode == 2, proc.stderr
    assert line.startswith("mlcd deploy: error: deploy lock file") and "symbolic link" in line
    assert victim.read_text() == "a file the CI user can write\n"
    assert node_state(rpipe) == before


def test_edited_audit_trail_is_refused_by_status_naming_the_line(rpipe: PipelineEnv) -> None:
    """Finding 8: `sed s/FAILED_ROLLED_BACK/SUCCEEDED/` on the audit trail made `status` report success."""
    assert rpipe.mlcd("bundle", "--build-number", "1").returncode == 0
    assert rpipe.mlcd("deploy", "--env", "test").returncode == 0
    rpipe.set_design_variables(fail_smoke=True)
    assert rpipe.mlcd("bundle", "--build-number", "2").returncode == 0
    assert rpipe.mlcd("deploy", "--env", "test").returncode == 0
    assert rpipe.mlcd("smoke", "--env", "test").returncode == 4
    intact = rpipe.mlcd("audit", "verify")
    assert intact.returncode == 0 and "chain intact (HMAC-SHA256 under MLCD_SIGNING_KEY)" in intact.stdout
    path = rpipe.out_dir / "audit.jsonl"
    lines = path.read_text().splitlines()
    bad = next(n for n, line in enumerate(lines, start=1) if "FAILED_ROLLED_BACK" in line)
    edited = path.read_text().replace("FAILED_ROLLED_BACK", "SUCCEEDED").replace('"FAILED"', '"SUCCESS"')
    path.write_text(edited)
    status = rpipe.mlcd("status", "--env", "test")
    verify = rpipe.mlcd("audit", "verify")
    status_line, verify_line = one_line_error(status.stderr), one_line_error(verify.stderr)
    first_bad = min(
        n for n, line in enumerate(path.read_text().splitlines(), start=1) if line != lines[n - 1]
    )
    assert first_bad <= bad
    ok = status.returncode == verify.returncode == 2 and f"line {first_bad}:" in status_line
    record_result("security_local", case="audit-edit", passed=ok)
    assert status.returncode == 2, status.stdout + status.stderr
    assert f"audit trail {path} is broken at line {first_bad}: its HMAC does not match" in status_line
    assert "SUCCEEDED" not in status.stdout
    assert verify.returncode == 2 and f"line {first_bad}:" in verify_line


def test_forged_bundle_in_the_repository_is_not_fetched_nor_deployed(
    rpipe: PipelineEnv, tmp_path: Path
) -> None:
    """Finding 1: an archive + metadata put into the repository was "fetched and verified" and deployed."""
    if not nginx_available():
        pytest.skip("nginx is not installed")
    with ArtifactServer.start(tmp_path / "repo", username="ci", password="repo-pw-Forge9") as repo:
        rpipe.config["artifact_repository"] = {
            "url": repo.url,
            "username_env": "AR_U",
            "password_env": "AR_P",
        }
        rpipe.write_config()
        rpipe.env.update(AR_U="ci", AR_P="repo-pw-Forge9")
        rpipe.set_design_variables(model_version="evil")  # exported, never published by a build
        assert rpipe.mlcd("bundle", "--build-number", "66").returncode == 0
        record = rpipe.run_record()
        data = Path(record["archive"]).read_bytes()
        folder = repo.store_dir / rpipe.project_key / record["bundleId"]
        folder.mkdir(parents=True)
        (folder / f"{record['bundleId']}.zip").write_bytes(data)
        meta = {"bundleId": record["bundleId"], "project": rpipe.project_key,
                "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}  # fmt: skip
        (folder / f"{record['bundleId']}.json").write_text(json.dumps(meta))
        agent = {"MLCD_OUT_DIR": str(tmp_path / "deploy-agent" / ".mlcd")}
        before = node_state(rpipe)
        fetch = rpipe.mlcd("fetch", "--bundle-id", record["bundleId"], extra_env=agent)
        deploy = rpipe.mlcd("deploy", "--env", "test", extra_env=agent)
    line = one_line_error(fetch.stderr)
    ok = (
        fetch.returncode == 2
        and "is not signed" in line
        and deploy.returncode == 2
        and node_state(rpipe) == before
    )
    record_result("security_local", case="forged-bundle", passed=ok)
    assert fetch.returncode == 2, fetch.stdout + fetch.stderr
    assert f"bundle {record['bundleId']} refused: its metadata is not signed" in line
    assert deploy.returncode == 2 and node_state(rpipe) == before


def test_hand_edited_prod_approval_deploys_nothing(rpipe: PipelineEnv) -> None:
    """Finding 2: an `environments.prod.approval` typed into run.json let `deploy --env prod` pass."""
    rpipe.env_config("prod")["approval"] = True
    rpipe.write_config()
    enable_approval_signing(rpipe)
    assert rpipe.mlcd("bundle").returncode == 0
    record = rpipe.run_record()
    record["environments"]["prod"] = {"approval": {"approver": "mallory", "sha256": record["sha256"]}}
    (rpipe.out_dir / "run.json").write_text(json.dumps(record))
    before = node_state(rpipe)
    proc = rpipe.mlcd("deploy", "--env", "prod")
    line = one_line_error(proc.stderr)
    ok = proc.returncode == 2 and "is not signed" in line and node_state(rpipe) == before
    record_result("security_local", case="forged-approval", passed=ok)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the approval of environment 'prod' in the run record is not signed" in line
    assert node_state(rpipe) == before
    assert not [r for r in rpipe.audit_records() if r["operation"] == "approve"]
