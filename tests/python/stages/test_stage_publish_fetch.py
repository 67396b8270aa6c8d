"""`mlcd publish` and `mlcd fetch` through the real CLI, against a real nginx WebDAV repository."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlcd.signing import SigningKeys, key_id, metadata_problem
from support.artifact_server import ArtifactServer
from support.pipeline_env import PipelineEnv

USER_ENV, PASSWORD_ENV = "ARTIFACTS_USER", "ARTIFACTS_PASSWORD"


@pytest.fixture
def published(pipeline: PipelineEnv, artifact_repo: ArtifactServer) -> PipelineEnv:
    """A pipeline with the artifact repository configured and this run's bundle built."""
    pipeline.config["artifact_repository"] = {
        "url": artifact_repo.url,
        "username_env": USER_ENV,
        "password_env": PASSWORD_ENV,
    }
    pipeline.write_config()
    assert artifact_repo.username and artifact_repo.password
    pipeline.env[USER_ENV] = artifact_repo.username
    pipeline.env[PASSWORD_ENV] = artifact_repo.password
    proc = pipeline.mlcd("bundle", "--build-number", "3", "--build-url", "http://ci.example/job/3/")
    assert proc.returncode == 0, proc.stderr
    return pipeline


def stored(repo: ArtifactServer, bundle_id: str, suffix: str) -> Path:
    return repo.store_dir / "SAMPLE" / bundle_id / f"{bundle_id}{suffix}"


def test_publish_puts_archive_and_metadata_and_verifies(
    published: PipelineEnv, artifact_repo: ArtifactServer
) -> None:
    proc = published.mlcd("publish")
    assert proc.returncode == 0, proc.stderr
    record = published.run_record()
    bundle_id = record["bundleId"]
    archive = stored(artifact_repo, bundle_id, ".zip")
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == record["sha256"]
    meta = json.loads(stored(artifact_repo, bundle_id, ".json").read_text())
    assert meta["bundleId"] == bundle_id and meta["sha256"] == record["sha256"]
    assert meta["size"] == record["size"] and meta["buildUrl"] == "http://ci.example/job/3/"
    assert meta["sha1"] == hashlib.sha1(archive.read_bytes()).hexdigest()
    assert record["published"]["verified"] is True
    assert record["published"]["url"].endswith(f"/SAMPLE/{bundle_id}/{bundle_id}.zip")
    methods = [(m, s) for m, p, s in artifact_repo.requests() if p.endswith(".zip")]
    assert ("PUT", 201) in methods and ("GET", 200) in methods  # stored, then read back
    audit = [r for r in published.audit_records() if r["operation"] == "publish"]
    assert audit[-1]["outcome"] == "SUCCESS" and audit[-1]["sha256"] == record["sha256"]
    assert published.stage_file("publish")["outcome"] == "SUCCESS"
    for text in (proc.stdout, proc.stderr, *(p.read_text() for p in published.out_dir.glob("*.json*"))):
        assert str(artifact_repo.password) not in text

    again = published.mlcd("publish")
    assert again.returncode == 0, again.stderr
    assert published.stage_file("publish")["outcome"] == "NOOP"


def test_publish_refuses_to_overwrite_different_bytes(
    published: PipelineEnv, artifact_repo: ArtifactServer
) -> None:
    assert published.mlcd("publish").returncode == 0
    bundle_id = published.run_record()["bundleId"]
    meta_path = stored(artifact_repo, bundle_id, ".json")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    proc = published.mlcd("publish")
    assert proc.returncode == 2
    assert "already published with different content" in proc.stderr


def test_publish_wrong_password_exit_6_without_secret(published: PipelineEnv) -> None:
    proc = published.mlcd("publish", extra_env={PASSWORD_ENV: "not-the-password-42"})
    assert proc.returncode == 6, proc.stderr
    assert "refused the credentials" in proc.stderr and "ARTIFACTS_PASSWORD" in proc.stderr
    assert "not-the-password-42" not in proc.stderr + proc.stdout
    assert "not-the-password-42" not in (published.out_dir / "audit.jsonl").read_text()


def test_publish_without_repository_config_exit_2(pipeline: PipelineEnv) -> None:
    assert pipeline.mlcd("bundle").returncode == 0
    proc = pipeline.mlcd("publish")
    assert proc.returncode == 2 and "artifact_repository" in proc.stderr


def test_publish_without_bundle_exit_2(published: PipelineEnv) -> None:
    shutil.rmtree(published.out_dir)
    proc = published.mlcd("publish")
    assert proc.returncode == 2 and "mlcd bundle" in proc.stderr


def test_fetch_on_another_machine_creates_run_record(published: PipelineEnv, tmp_path: Path) -> None:
    assert published.mlcd("publish").returncode == 0
    original = published.run_record()
    other = tmp_path / "other-agent" / ".mlcd"
    proc = published.mlcd(
        "fetch", "--bundle-id", original["bundleId"], extra_env={"MLCD_OUT_DIR": str(other)}
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((other / "run.json").read_text())
    assert record["bundleId"] == original["bundleId"] and record["sha256"] == original["sha256"]
    assert record["buildUrl"] == "http://ci.example/job/3/" and record["project"] == "SAMPLE"
    archive = Path(record["archive"])
    assert archive == (other / "bundles" / f"{original['bundleId']}.zip").resolve()
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == original["sha256"]
    # the fetched run record is enough to deploy on this machine
    deploy = published.mlcd("deploy", "--env", "test", extra_env={"MLCD_OUT_DIR": str(other)})
    assert deploy.returncode == 0, deploy.stderr
    assert published.automation["test"].url  # deployed to the stand-in test node


def test_fetch_detects_a_damaged_archive(
    published: PipelineEnv, artifact_repo: ArtifactServer, tmp_path: Path
) -> None:
    assert published.mlcd("publish").returncode == 0
    bundle_id = published.run_record()["bundleId"]
    archive = stored(artifact_repo, bundle_id, ".zip")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    other = tmp_path / "other" / ".mlcd"
    proc = published.mlcd("fetch", "--bundle-id", bundle_id, extra_env={"MLCD_OUT_DIR": str(other)})
    assert proc.returncode == 2, proc.stderr
    assert "sha256" in proc.stderr and "publish the bundle again" in proc.stderr
    assert not (other / "bundles" / f"{bundle_id}.zip").exists()
    assert not (other / "run.json").exists()


def test_fetch_unknown_bundle_exit_2(published: PipelineEnv, tmp_path: Path) -> None:
    proc = published.mlcd(
        "fetch", "--bundle-id", "SAMPLE_nope", extra_env={"MLCD_OUT_DIR": str(tmp_path / "o")}
    )
    assert proc.returncode == 2 and "not in the artifact repository" in proc.stderr


# -- provenance (issue 12, finding 1) ---------------------------------------------------------------
def plant_forged_bundle(
    pipe: PipelineEnv, repo: ArtifactServer, tmp_path: Path, meta: dict[str, object] | None = None
) -> tuple[str, str]:
    """Put into the repository a bundle the design node exported but no build published: (id, sha256).

    The attacker can write to the repository: archive and metadata with a correct sha256 and size.
    """
    pipe.set_design_variables(model_version="evil")
    scratch = tmp_path / "attacker" / ".mlcd"
    made = pipe.mlcd("bundle", "--build-number", "66", extra_env={"MLCD_OUT_DIR": str(scratch)})
    assert made.returncode == 0, made.stderr
    record = json.loads((scratch / "run.json").read_text())
    bundle_id, data = record["bundleId"], Path(record["archive"]).read_bytes()
    stored(repo, bundle_id, ".zip").parent.mkdir(parents=True)
    stored(repo, bundle_id, ".zip").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    forged = {"bundleId": bundle_id, "project": "SAMPLE", "sha256": sha, "size": len(data), **(meta or {})}
    stored(repo, bundle_id, ".json").write_text(json.dumps(forged))
    return bundle_id, sha


def test_publish_signs_the_metadata(published: PipelineEnv, artifact_repo: ArtifactServer) -> None:
    assert published.mlcd("publish").returncode == 0
    bundle_id = published.run_record()["bundleId"]
    meta = json.loads(stored(artifact_repo, bundle_id, ".json").read_text())
    key = published.env["MLCD_SIGNING_KEY"].encode()
    assert meta["signature"]["alg"] == "hmac-sha256" and meta["signature"]["keyId"] == key_id(key)
    assert metadata_problem(meta, SigningKeys(key, env_var="MLCD_SIGNING_KEY")) is None
    meta["size"] += 1
    assert "does not match" in str(metadata_problem(meta, SigningKeys(key, env_var="MLCD_SIGNING_KEY")))
    assert published.env["MLCD_SIGNING_KEY"] not in stored(artifact_repo, bundle_id, ".json").read_text()


@pytest.mark.parametrize("forgery", ["unsigned", "replayed-signature"])
def test_fetch_refuses_a_bundle_no_build_published(
    published: PipelineEnv, artifact_repo: ArtifactServer, tmp_path: Path, forgery: str
) -> None:
    assert published.mlcd("publish").returncode == 0
    genuine = json.loads(stored(artifact_repo, published.run_record()["bundleId"], ".json").read_text())
    extra = {"signature": genuine["signature"]} if forgery == "replayed-signature" else None
    bundle_id, _ = plant_forged_bundle(published, artifact_repo, tmp_path, extra)
    other = tmp_path / "other" / ".mlcd"
    proc = published.mlcd("fetch", "--bundle-id", bundle_id, extra_env={"MLCD_OUT_DIR": str(other)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    reason = "is not signed" if forgery == "unsigned" else "signature does not match"
    assert line.startswith(f"mlcd fetch: error: bundle {bundle_id} refused: its metadata {reason}")
    assert "nothing was downloaded" in line and "--sha256" in line
    assert not (other / "bundles" / f"{bundle_id}.zip").exists() and not (other / "run.json").exists()
    deploy = published.mlcd("deploy", "--env", "test", extra_env={"MLCD_OUT_DIR": str(other)})
    assert deploy.returncode == 2 and "no run record" in deploy.stderr  # nothing to deploy


def test_fetch_with_a_sha256_pin_needs_no_signature_and_rejects_other_bytes(
    published: PipelineEnv, artifact_repo: ArtifactServer, tmp_path: Path
) -> None:
    bundle_id, sha = plant_forged_bundle(published, artifact_repo, tmp_path)
    other = {"MLCD_OUT_DIR": str(tmp_path / "other" / ".mlcd")}
    pinned = published.mlcd("fetch", "--bundle-id", bundle_id, "--sha256", sha.upper(), extra_env=other)
    assert pinned.returncode == 0, pinned.stderr
    record = json.loads((tmp_path / "other" / ".mlcd" / "run.json").read_text())
    assert record["sha256"] == sha and record["provenance"] == {"trustedBy": "pinned sha256"}
    wrong = published.mlcd("fetch", "--bundle-id", bundle_id, "--sha256", "0" * 64, extra_env=other)
    assert wrong.returncode == 2 and "not the pinned 000000000000" in wrong.stderr
    bad = published.mlcd("fetch", "--bundle-id", bundle_id, "--sha256", "abc", extra_env=other)
    assert bad.returncode == 2 and "--sha256 is not 64 hex digits" in bad.stderr


def test_fetch_without_a_signing_key_configured_needs_a_pin(
    published: PipelineEnv, artifact_repo: ArtifactServer, tmp_path: Path
) -> None:
    del published.config["signing"]
    published.write_config()
    publish = published.mlcd("publish")
    assert publish.returncode == 0 and "WARNING publishing unsigned metadata" in publish.stdout
    record = published.run_record()
    other = {"MLCD_OUT_DIR": str(tmp_path / "other" / ".mlcd")}
    proc = published.mlcd("fetch", "--bundle-id", record["bundleId"], extra_env=other)
    assert proc.returncode == 2 and "mlcd.yaml names no signing key" in proc.stderr
    pinned = published.mlcd("fetch", "--bundle-id", record["bundleId"], "--sha256", record["sha256"],
                            extra_env=other)  # fmt: skip
    assert pinned.returncode == 0, pinned.stderr


def test_fetch_with_an_unset_signing_key_exit_2_naming_it(published: PipelineEnv, tmp_path: Path) -> None:
    assert published.mlcd("publish").returncode == 0
    env = dict(published.env)
    del env["MLCD_SIGNING_KEY"]
    proc = subprocess.run(
        [sys.executable, "-m", "mlcd", "fetch", "--bundle-id", published.run_record()["bundleId"]],
        cwd=published.root, env={**env, "MLCD_OUT_DIR": str(tmp_path / "o")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "MLCD_SIGNING_KEY is not set" in proc.stderr


def test_publish_signs_metadata_that_was_stored_unsigned(
    published: PipelineEnv, artifact_repo: ArtifactServer
) -> None:
    assert published.mlcd("publish").returncode == 0
    bundle_id = published.run_record()["bundleId"]
    path = stored(artifact_repo, bundle_id, ".json")
    meta = json.loads(path.read_text())
    del meta["signature"]
    path.write_text(json.dumps(meta))
    again = published.mlcd("publish")
    assert again.returncode == 0 and "not validly signed; signing it" in again.stdout
    assert "signature" in json.loads(path.read_text())


def test_fetch_of_a_different_archive_clears_approvals(
    published: PipelineEnv, artifact_repo: ArtifactServer
) -> None:
    assert published.mlcd("publish").returncode == 0
    assert published.mlcd("approve", "--env", "prod", "--approver", "alice").returncode == 0
    same = published.mlcd("fetch", "--bundle-id", published.run_record()["bundleId"])
    assert same.returncode == 0 and "approval" in published.run_record()["environments"]["prod"]
    record = published.run_record()
    record["sha256"] = "f" * 64  # this workspace's archive is not the published one
    (published.out_dir / "run.json").write_text(json.dumps(record))
    other = published.mlcd("fetch", "--bundle-id", record["bundleId"])
    assert other.returncode == 0 and "approvals cleared (prod)" in other.stdout
    assert published.run_record()["environments"]["prod"] == {}
