"""`mlcd validate` and `mlcd bundle` through the real CLI against stand-in nodes on loopback."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import zipfile
from pathlib import Path

from lxml import etree

from support.pipeline_env import PipelineEnv


def no_secrets(pipe: PipelineEnv, *texts: str) -> None:
    """No API key in the given texts nor in any file mlcd wrote."""
    written = [
        p.read_text(errors="replace") for p in pipe.out_dir.rglob("*") if p.is_file() and p.suffix != ".zip"
    ]
    for key in pipe.keys.values():
        for text in (*texts, *written):
            assert key not in text


def junit_cases(path: Path) -> dict[str, etree._Element]:
    root = etree.parse(str(path)).getroot()
    return {tc.get("name"): tc for tc in root.iter("testcase")}


def test_validate_passes_and_writes_junit(pipeline: PipelineEnv) -> None:
    proc = pipeline.mlcd("validate")
    assert proc.returncode == 0, proc.stderr
    cases = junit_cases(pipeline.out_dir / "reports" / "validate.xml")
    assert "project SAMPLE exists" in cases and "prod: smoke scenarios" in cases
    assert all(tc.find("failure") is None for tc in cases.values())
    assert pipeline.stage_file("validate")["outcome"] == "SUCCESS"
    assert "release checks passed" in proc.stdout
    no_secrets(pipeline, proc.stdout, proc.stderr)


def test_validate_failed_checks_exit_3_after_writing_junit(pipeline: PipelineEnv) -> None:
    test_env = pipeline.env_config("test")
    test_env["tests"] = {"scenarios": ["TEST_PASS", "TEST_GONE"]}
    test_env["connection_remappings"] = {"warehouse": "warehouse"}
    pipeline.env_config("prod")["smoke"] = ["TEST_SMOKE_MISSING"]
    pipeline.write_config()
    proc = pipeline.mlcd("validate")
    assert proc.returncode == 3, proc.stderr
    assert "release checks failed" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    cases = junit_cases(pipeline.out_dir / "reports" / "validate.xml")
    failed = {name for name, tc in cases.items() if tc.find("failure") is not None}
    assert failed == {"test: test scenarios", "test: connection remappings", "prod: smoke scenarios"}
    assert "TEST_GONE" in cases["test: test scenarios"].find("failure").get("message")
    assert pipeline.stage_file("validate")["outcome"] == "GATE_FAILED"


def test_validate_missing_project_is_a_failed_check(pipeline: PipelineEnv) -> None:
    pipeline.config["project"] = "NOPE"
    pipeline.write_config()
    proc = pipeline.mlcd("validate")
    assert proc.returncode == 3
    assert "project NOPE does not exist" in proc.stderr and "SAMPLE" in proc.stderr


def test_validate_refused_key_exit_6_without_the_key(pipeline: PipelineEnv) -> None:
    proc = pipeline.mlcd("validate", extra_env={"DSS_DESIGN_API_KEY": "wrong-key-0123456789"})
    assert proc.returncode == 6, proc.stderr
    assert "wrong-key-0123456789" not in proc.stderr + proc.stdout
    assert (pipeline.out_dir / "reports" / "validate.xml").exists()
    no_secrets(pipeline, proc.stdout, proc.stderr)


def test_validate_unreachable_node_exit_6(pipeline: PipelineEnv) -> None:
    pipeline.design.stop()
    proc = pipeline.mlcd("validate")
    assert proc.returncode == 6, proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_missing_key_env_var_exit_2(pipeline: PipelineEnv) -> None:
    env = dict(pipeline.env)
    del env["DSS_DESIGN_API_KEY"]
    proc = subprocess.run(
        [*pipeline_cmd(), "validate"], cwd=pipeline.root, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "DSS_DESIGN_API_KEY" in proc.stderr


def pipeline_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "mlcd"]


def test_bundle_exports_downloads_and_records(pipeline: PipelineEnv) -> None:
    proc = pipeline.mlcd("bundle", "--build-number", "42", "--build-url", "http://ci.example/job/7/")
    assert proc.returncode == 0, proc.stderr
    record = pipeline.run_record()
    bundle_id = record["bundleId"]
    assert re.fullmatch(r"SAMPLE_\d{8}T\d{6}Z_nogit_b42", bundle_id)
    archive = Path(record["archive"])
    assert archive == (pipeline.out_dir / "bundles" / f"{bundle_id}.zip").resolve()
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == record["sha256"]
    assert archive.stat().st_size == record["size"]
    assert record["buildNumber"] == "42" and record["buildUrl"] == "http://ci.example/job/7/"
    assert record["project"] == "SAMPLE" and record["gitSha"] == "nogit" and record["createdAt"]
    with zipfile.ZipFile(archive) as zf:
        assert json.loads(zf.read("manifest.json"))["bundleId"] == bundle_id
    stage = pipeline.stage_file("bundle")
    assert stage["outcome"] == "SUCCESS" and stage["bundleId"] == bundle_id
    ops = [(r["operation"], r["outcome"]) for r in pipeline.audit_records()]
    assert ("export_bundle", "SUCCESS") in ops and ("download_bundle", "SUCCESS") in ops
    assert "download" in proc.stdout and "100%" in proc.stdout
    no_secrets(pipeline, proc.stdout, proc.stderr)


def test_bundle_id_and_release_notes_from_git(pipeline: PipelineEnv) -> None:
    root = pipeline.root
    git = ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "README").write_text("x")
    subprocess.run([*git, "-C", str(root), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(root), "commit", "-qm", "first release"], check=True)
    subprocess.run([*git, "-C", str(root), "tag", "v1"], check=True)
    (root / "README").write_text("y")
    subprocess.run([*git, "-C", str(root), "commit", "-qam", "tune the churn threshold"], check=True)
    sha = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short=8", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    proc = pipeline.mlcd("bundle")
    assert proc.returncode == 0, proc.stderr
    record = pipeline.run_record()
    assert record["bundleId"].endswith(f"_{sha}_blocal")
    with zipfile.ZipFile(record["archive"]) as zf:
        notes = json.loads(zf.read("manifest.json"))["releaseNotes"]
    assert "tune the churn threshold" in notes and "since v1" in notes
    assert "first release" not in notes.split("Changes", 1)[1]


def test_bundle_explicit_id_and_invalid_id(pipeline: PipelineEnv) -> None:
    proc = pipeline.mlcd("bundle", "--bundle-id", "bad id/../x")
    assert proc.returncode == 2 and "--bundle-id" in proc.stderr
    assert not (pipeline.out_dir / "run.json").exists()
    proc = pipeline.mlcd("bundle", "--bundle-id", "SAMPLE_manual.1")
    assert proc.returncode == 0, proc.stderr
    assert pipeline.run_record()["bundleId"] == "SAMPLE_manual.1"


def test_bundle_id_format_is_configurable(pipeline: PipelineEnv) -> None:
    pipeline.config["bundle"] = {"id_format": "rel-{build}-{git_sha}", "release_notes": "none"}
    pipeline.write_config()
    proc = pipeline.mlcd("bundle", "--build-number", "9", "--git-sha", "abc123def456")
    assert proc.returncode == 0, proc.stderr
    assert pipeline.run_record()["bundleId"] == "rel-9-abc123de"
    pipeline.config["bundle"] = {"id_format": "{project}_{branch}"}
    pipeline.write_config()
    proc = pipeline.mlcd("bundle")
    assert proc.returncode == 2 and "{branch}" in proc.stderr


def test_bundle_id_taken_or_project_missing_exit_2_with_fix(pipeline: PipelineEnv) -> None:
    assert pipeline.mlcd("bundle", "--bundle-id", "SAMPLE_once").returncode == 0
    proc = pipeline.mlcd("bundle", "--bundle-id", "SAMPLE_once")
    assert proc.returncode == 2
    assert "already exported" in proc.stderr and "--build-number" in proc.stderr
    pipeline.config["project"] = "NOPE"
    pipeline.write_config()
    proc = pipeline.mlcd("bundle")
    assert proc.returncode == 2 and "project NOPE does not exist" in proc.stderr
