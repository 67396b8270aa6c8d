"""An archive whose layout mlcd does not recognise is opaque bytes, not a refusal (issue 11 item 2)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mlcd.errors import InputError
from mlcd.release.archive import read_bundle


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_zip_without_a_root_manifest_is_opaque_and_named_by_the_run_record(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "b.zip", {"export/project.json": b"{}", "export/scenarios/X.json": b"{}"})
    info = read_bundle(archive, "CHURN_r1")
    assert (info.bundle_id, info.layout_known, info.scenarios, info.required_connections) == (
        "CHURN_r1",
        False,
        {},
        (),
    )


def test_a_known_layout_still_gives_its_manifest_facts(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "b.zip",
        {"manifest.json": b'{"bundleId": "B1", "projectKey": "P", "requiredConnections": ["db"]}'},
    )
    info = read_bundle(archive, "ignored")
    assert (info.bundle_id, info.project_key, info.required_connections, info.layout_known) == (
        "B1",
        "P",
        ("db",),
        True,
    )


def test_bytes_that_are_not_a_zip_are_still_refused_in_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "b.zip"
    archive.write_bytes(b"not a zip")
    with pytest.raises(InputError) as info:
        read_bundle(archive, "B1")
    assert "not a readable bundle archive" in info.value.one_line()
