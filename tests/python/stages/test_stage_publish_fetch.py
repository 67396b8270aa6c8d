"""`mlcd publish` and `mlcd fetch` through the real CLI, against a real nginx WebDAV repository."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers.artifact_server import ArtifactServer
from helpers.pipeline_env import PipelineEnv

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
