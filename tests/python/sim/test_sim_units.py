"""Unit tests of the stand-in's pieces that need no server: auth header parsing, archive checks."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import pytest

from mlcd.sim import bundles
from mlcd.sim.auth import is_authorised, key_from_header
from mlcd.sim.errors import SimError


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (_basic("abc123", ""), "abc123"),
        (_basic("", "abc123"), "abc123"),
        ("Bearer abc123", "abc123"),
        ("bearer   abc123 ", "abc123"),
        (_basic("user", "password"), None),
        (_basic("", ""), None),
        ("Basic not-base64!", None),
        ("Digest abc123", None),
        ("", None),
        (None, None),
    ],
)
def test_key_from_header(header: str | None, key: str | None) -> None:
    assert key_from_header(header) == key


def test_is_authorised_compares_the_whole_key() -> None:
    assert is_authorised("Bearer secret-key", "secret-key")
    assert not is_authorised("Bearer secret-ke", "secret-key")
    assert not is_authorised("Bearer secret-key2", "secret-key")


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_unpack_refuses_entries_escaping_the_folder(tmp_path: Path) -> None:
    manifest = json.dumps({"bundleId": "b1", "projectKey": "P", "files": {}}).encode()
    archive = _zip(tmp_path / "evil.zip", {"manifest.json": manifest, "project/../../evil.txt": b"x"})
    with pytest.raises(SimError) as err:
        bundles.unpack(archive, tmp_path / "out" / "content")
    assert err.value.status == 400 and err.value.code == "ERR_BUNDLE_INVALID_ARCHIVE"
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "content").exists()


def test_unpack_refuses_missing_listed_file_and_bad_manifest(tmp_path: Path) -> None:
    manifest = json.dumps({"bundleId": "b1", "projectKey": "P", "files": {"a.txt": {"sha256": "0" * 64}}})
    archive = _zip(tmp_path / "missing.zip", {"manifest.json": manifest.encode()})
    with pytest.raises(SimError, match=r"lacks 'a\.txt'"):
        bundles.unpack(archive, tmp_path / "out" / "content")
    no_id = _zip(tmp_path / "noid.zip", {"manifest.json": b'{"projectKey": "P"}'})
    with pytest.raises(SimError, match="bundleId"):
        bundles.read_manifest(no_id)
    no_manifest = _zip(tmp_path / "nomanifest.zip", {"project/a.txt": b"x"})
    with pytest.raises(SimError, match=r"no manifest\.json"):
        bundles.read_manifest(no_manifest)


def test_export_then_unpack_round_trip(tmp_path: Path) -> None:
    project = tmp_path / "P"
    (project / "data").mkdir(parents=True)
    (project / "data" / "rows.csv").write_text("a,b\n1,2\n")
    (project / "variables.json").write_text('{"standard": {"x": 1}, "local": {"secret_path": "/x"}}')
    meta = {"projectKey": "P", "name": "P", "connections": ["db"]}
    manifest = bundles.export_project(project, meta, "b1", "notes", "ci", tmp_path / "b1.zip")
    assert manifest["requiredConnections"] == ["db"]
    got = bundles.unpack(tmp_path / "b1.zip", tmp_path / "out" / "content")
    assert got["bundleId"] == "b1"
    assert (tmp_path / "out" / "content" / "data" / "rows.csv").read_text() == "a,b\n1,2\n"
    variables = json.loads((tmp_path / "out" / "content" / "variables.json").read_text())
    assert variables == {"standard": {"x": 1}, "local": {}}


def test_test_control_routes_exist_only_when_asked_and_always_need_the_key(tmp_path: Path) -> None:
    """Issue 12 item 10: a process on the machine could inject faults into a running node without its key."""
    from mlcd.sim.scenarios import ScenarioRunner
    from mlcd.sim.server import create_app
    from mlcd.sim.store import Store

    store = Store(tmp_path, "design")
    plan = {"rules": [{"path": "/instance-info", "status": 503}]}
    plain = create_app(store, ScenarioRunner(store), "the-key-123").test_client()
    assert plain.put("/__sim__/faults", json=plan).status_code == 404
    assert plain.get("/__sim__/stats", headers={"Authorization": "Bearer the-key-123"}).status_code == 404
    client = create_app(store, ScenarioRunner(store), "the-key-123", test_control=True).test_client()
    resp = client.put("/__sim__/faults", json=plan)  # from loopback, without the key
    assert resp.status_code == 401 and resp.json is not None and resp.json["errorType"]
    assert client.get("/__sim__/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/__sim__/stats", headers={"Authorization": "Bearer the-key-123"})
    assert ok.status_code == 200
