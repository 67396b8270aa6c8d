"""Export, download, import, activate: bundles on stand-in design and automation nodes."""

from __future__ import annotations

import base64
import json
import socket
import zipfile
from pathlib import Path

from mlcd.sim.launcher import SimNode
from support.simclient import Api

KEY = "SIMPRJ"


def test_export_download_has_manifest_and_standard_variables_only(
    sim_design: SimNode, tmp_path: Path
) -> None:
    api = Api(sim_design)
    exported = api.json("PUT", f"/projects/{KEY}/bundles/exported/v1", params={"releaseNotes": "notes 1"})
    assert exported["bundleId"] == "v1"
    archive = api.export(KEY, "v2", tmp_path / "v2.zip")
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        variables = json.loads(zf.read("project/variables.json"))
        names = zf.namelist()
    assert manifest["bundleId"] == "v2" and manifest["projectKey"] == KEY
    assert manifest["requiredConnections"] == ["warehouse"]
    assert "scenarios/TEST_OK.json" in manifest["files"]
    assert "project/scripts/ok.py" in names
    assert variables == {"standard": {"threshold": 0.7}, "local": {}}
    listed = api.json("GET", f"/projects/{KEY}/bundles/exported")["bundles"]
    assert [b["bundleId"] for b in listed] == ["v1", "v2"]
    assert listed[0]["releaseNotes"] == "notes 1"


def test_export_existing_id_conflicts_and_delete_frees_it(sim_design: SimNode) -> None:
    api = Api(sim_design)
    api.json("PUT", f"/projects/{KEY}/bundles/exported/v1")
    resp = api.call("PUT", f"/projects/{KEY}/bundles/exported/v1")
    assert resp.status_code == 409
    assert "already exists" in resp.json()["message"]
    assert resp.json()["errorType"].startswith("com.dataiku.")
    api.json("DELETE", f"/projects/{KEY}/bundles/exported/v1")
    assert api.json("GET", f"/projects/{KEY}/bundles/exported")["bundles"] == []
    assert api.call("PUT", f"/projects/{KEY}/bundles/exported/v1").status_code == 200


def test_export_refused_on_automation_and_bad_ids(sim_design: SimNode, sim_automation: SimNode) -> None:
    resp = Api(sim_automation).call("PUT", f"/projects/{KEY}/bundles/exported/v1")
    assert resp.status_code in (400, 404)
    assert resp.json()["code"]
    resp = Api(sim_design).call("PUT", "/projects/NOPE/bundles/exported/v1")
    assert resp.status_code == 401  # an unknown project: "Failed to read project permissions" (evidence)
    resp = Api(sim_design).call("PUT", f"/projects/{KEY}/bundles/exported/..%2Fescape")
    assert resp.status_code in (400, 404)


def test_import_activate_and_active_state(
    sim_design: SimNode, sim_automation: SimNode, tmp_path: Path
) -> None:
    design, auto = Api(sim_design), Api(sim_automation)
    v1 = design.export(KEY, "v1", tmp_path / "v1.zip")
    v2 = design.export(KEY, "v2", tmp_path / "v2.zip")
    # importing into a project that does not exist yet is refused; creating from the bundle works
    assert auto.upload(f"/projects/{KEY}/bundles/imported/actions/importFromStream", v1).status_code == 401
    created = auto.upload("/projectsFromBundle/", v1)
    assert created.status_code == 200, created.text
    assert created.json()["projectKey"] == KEY
    assert auto.upload("/projectsFromBundle/", v1).status_code == 409
    [project] = auto.json("GET", "/projects/")
    assert "activeBundleState" not in project
    report = auto.json("POST", f"/projects/{KEY}/bundles/imported/v1/actions/activate", json={})
    assert report["bundleId"] == "v1"
    assert auto.json("GET", "/projects/")[0]["activeBundleState"] == {
        "bundleId": "v1",
        "activatedOn": auto.json("GET", "/projects/")[0]["activeBundleState"]["activatedOn"],
    }
    # local variables on the automation node survive the next activation
    auto.call(
        "PUT",
        f"/projects/{KEY}/variables/",
        json={"standard": {"threshold": 0.7}, "local": {"env": "test"}},
    )
    resp = auto.upload(f"/projects/{KEY}/bundles/imported/actions/importFromStream", v2)
    assert resp.status_code == 200, resp.text
    assert auto.upload(f"/projects/{KEY}/bundles/imported/actions/importFromStream", v2).status_code == 409
    imported = auto.json("GET", f"/projects/{KEY}/bundles/imported")["bundles"]
    assert [b["bundleId"] for b in imported] == ["v1", "v2"]
    auto.json("POST", f"/projects/{KEY}/bundles/imported/v2/actions/preload")
    auto.json("POST", f"/projects/{KEY}/bundles/imported/v2/actions/activate", json={})
    assert auto.json("GET", "/projects/")[0]["activeBundleState"]["bundleId"] == "v2"
    assert auto.json("GET", f"/projects/{KEY}/variables/") == {
        "standard": {"threshold": 0.7},
        "local": {"env": "test"},
    }
    # the active bundle cannot be deleted; the other one can
    assert auto.call("DELETE", f"/projects/{KEY}/bundles/imported/v2").status_code == 400
    auto.json("DELETE", f"/projects/{KEY}/bundles/imported/v1")
    assert [b["bundleId"] for b in auto.json("GET", f"/projects/{KEY}/bundles/imported")["bundles"]] == [
        "v2"
    ]
    assert (
        auto.call("POST", f"/projects/{KEY}/bundles/imported/v1/actions/activate", json={}).status_code
        == 404
    )
    # state survives a restart
    sim_automation.restart()
    auto = Api(sim_automation)
    assert auto.json("GET", "/projects/")[0]["activeBundleState"]["bundleId"] == "v2"
    assert auto.json("GET", f"/projects/{KEY}/variables/")["local"] == {"env": "test"}


def test_activation_refuses_missing_connection_unless_remapped(
    tmp_path: Path, sim_design: SimNode, sim_api_key: str
) -> None:
    archive = Api(sim_design).export("SIMPRJ", "v1", tmp_path / "v1.zip")
    with SimNode.start(
        "automation",
        tmp_path / "prod",
        api_key=sim_api_key,
        connections={"warehouse_prod": {"type": "PostgreSQL"}},
    ) as node:
        auto = Api(node)
        assert auto.upload("/projectsFromBundle/", archive).status_code == 200
        path = f"/projects/{KEY}/bundles/imported/v1/actions/activate"
        resp = auto.call("POST", path, json={})
        assert resp.status_code == 400
        assert resp.json()["code"] == "ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION"
        assert "warehouse" in resp.json()["message"]
        settings = auto.json("GET", f"/projects/{KEY}/settings")
        settings["bundleContainerSettings"]["remapping"]["connections"] = [
            {"source": "warehouse", "target": "warehouse_nope"}
        ]
        assert auto.call("PUT", f"/projects/{KEY}/settings", json=settings).status_code == 204
        resp = auto.call("POST", path, json={})
        assert resp.json()["code"] == "ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION"
        assert "warehouse_nope" in resp.json()["message"]
        assert "activeBundleState" not in auto.json("GET", "/projects/")[0]
        settings["bundleContainerSettings"]["remapping"]["connections"][0]["target"] = "warehouse_prod"
        assert auto.call("PUT", f"/projects/{KEY}/settings", json=settings).status_code == 204
        resp = auto.call("POST", path, json={})
        assert resp.status_code == 200, resp.text
        assert auto.json("GET", "/projects/")[0]["activeBundleState"]["bundleId"] == "v1"
        report = resp.json()
        assert [m["message"] for m in report["messages"]] == [
            "Connection 'warehouse' of the bundle is remapped to 'warehouse_prod'"
        ]
        assert report["error"] is False


def test_truncated_or_corrupt_upload_is_400_and_imports_nothing(
    sim_design: SimNode, sim_automation: SimNode, tmp_path: Path
) -> None:
    archive = Api(sim_design).export(KEY, "v1", tmp_path / "v1.zip")
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not a zip file" * 100)
    auto = Api(sim_automation)
    for bad in (truncated, garbage):
        resp = auto.upload("/projectsFromBundle/", bad)
        assert resp.status_code == 400
        assert resp.json()["code"] == "ERR_BUNDLE_INVALID_ARCHIVE"
    no_file = auto.call("POST", "/projectsFromBundle/", files={"other": ("x.zip", b"123")})
    assert no_file.status_code == 400
    assert auto.json("GET", "/projects/") == []
    uploads = list((sim_automation.data_dir / "state" / "uploads").iterdir())
    assert uploads == []


def test_tampered_member_is_rejected(sim_design: SimNode, sim_automation: SimNode, tmp_path: Path) -> None:
    archive = Api(sim_design).export(KEY, "v1", tmp_path / "v1.zip")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "project/scripts/ok.py":
                payload += b"\nprint('injected')\n"
            dst.writestr(info, payload)
    resp = Api(sim_automation).upload("/projectsFromBundle/", tampered)
    assert resp.status_code == 400
    assert "sha256" in resp.json()["message"]


def test_upload_cut_short_at_http_level_is_400(sim_automation: SimNode) -> None:
    boundary = "sim-test-boundary"
    auth = base64.b64encode(f"{sim_automation.api_key}:".encode()).decode()
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.zip"\r\n\r\n'
    head = (
        "POST /public/api/projectsFromBundle/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {auth}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        "Content-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", sim_automation.port), timeout=30) as sock:
        sock.sendall(head.encode() + part.encode() + b"PK" * 2000)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 400 " in status_line
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == "ERR_UPLOAD_TRUNCATED"
    assert Api(sim_automation).json("GET", "/projects/") == []
    assert list((sim_automation.data_dir / "state" / "uploads").iterdir()) == []
