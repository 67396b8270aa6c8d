"""The run record: created, loaded, merged, and never left half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlcd.errors import InputError
from mlcd.redact import register_secret
from mlcd.runrecord import RunRecord


def test_create_load_roundtrip(tmp_path: Path) -> None:
    rec = RunRecord.create(
        tmp_path, bundleId="P_1", sha256="ab" * 32, size=10, project="P", archive=tmp_path / "a.zip"
    )
    again = RunRecord.load(tmp_path)
    assert again.bundle_id == "P_1"
    assert again.sha256 == "ab" * 32
    assert again.archive == tmp_path / "a.zip"
    assert again.project == "P"
    assert again.data["createdAt"].endswith("Z")
    assert again.data == rec.data


def test_update_env_merges_and_persists(tmp_path: Path) -> None:
    RunRecord.create(tmp_path, bundleId="P_1")
    first = RunRecord.load(tmp_path)
    second = RunRecord.load(tmp_path)  # another process with an older view
    first.update_env("test", state="ACTIVE", deployedBundleId="P_1")
    second.update_env("prod", approvedBy="alice")
    second.update_env("test", previousBundleId="P_0")
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["environments"]["test"] == {
        "state": "ACTIVE",
        "deployedBundleId": "P_1",
        "previousBundleId": "P_0",
    }
    assert data["environments"]["prod"] == {"approvedBy": "alice"}
    assert RunRecord.load(tmp_path).env("missing") == {}


def test_missing_and_corrupt_record_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="mlcd bundle"):
        RunRecord.load(tmp_path)
    (tmp_path / "run.json").write_text('{"bundleId": "P_1", "sha')
    with pytest.raises(InputError, match="corrupt"):
        RunRecord.load(tmp_path)


def test_crash_mid_write_leaves_old_record_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RunRecord.create(tmp_path, bundleId="P_1", sha256="aa")
    rec = RunRecord.load(tmp_path)

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        rec.update_env("test", state="DEPLOYING")
    monkeypatch.undo()
    after = RunRecord.load(tmp_path)
    assert after.bundle_id == "P_1" and after.env("test") == {}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_record_is_redacted(tmp_path: Path) -> None:
    register_secret("s3cr3t-key-value")
    RunRecord.create(tmp_path, bundleId="P_1", note="leaked s3cr3t-key-value")
    assert "s3cr3t-key-value" not in (tmp_path / "run.json").read_text()
