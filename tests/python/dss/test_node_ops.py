"""Unit tests of every DSSNode operation: the DSS call it makes and what it returns."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlcd.dss.errors import DSSConflict, DSSError, DSSNotFound
from support.dssfakes import FakeClock, Reply, Seen, dss_error, make_node

Route = Callable[[Seen], Reply]


def router(routes: dict[tuple[str, str], Reply | Route]) -> Callable[[Seen], Reply]:
    def handle(seen: Seen) -> Reply:
        target = routes.get((seen.method, seen.path))
        if target is None:
            return dss_error(404, message=f"no route {seen.method} {seen.path}")
        return target(seen) if callable(target) else target

    return handle


def test_instance_and_auth_info(clock: FakeClock) -> None:
    node, _t = make_node(
        router(
            {
                ("GET", "instance-info"): Reply(json_body={"nodeId": "n1", "nodeType": "DESIGN"}),
                ("GET", "auth/info"): Reply(json_body={"authIdentifier": "ci", "groups": ["ops"]}),
            }
        ),
        clock,
    )
    assert node.instance_info()["nodeId"] == "n1"
    assert node.auth_info()["authIdentifier"] == "ci"


def test_projects(clock: FakeClock) -> None:
    projects = [{"projectKey": "CHURN", "activeBundleState": {"bundleId": "b2"}}, {"projectKey": "OTHER"}]
    node, _t = make_node(
        router(
            {
                ("GET", "projects/"): Reply(json_body=projects),
                ("GET", "projects/CHURN"): Reply(json_body={"projectKey": "CHURN", "name": "Churn"}),
            }
        ),
        clock,
    )
    assert [p["projectKey"] for p in node.list_projects()] == ["CHURN", "OTHER"]
    assert node.get_project("CHURN")["name"] == "Churn"
    assert node.project_exists("CHURN") is True
    assert node.project_exists("NOPE") is False
    with pytest.raises(DSSNotFound):
        node.get_project("NOPE")
    assert node.active_bundle_id("CHURN") == "b2"
    assert node.active_bundle_id("OTHER") is None
    assert node.active_bundle_id("ABSENT") is None


def test_project_key_is_quoted_in_paths(clock: FakeClock) -> None:
    node, t = make_node(lambda s: Reply(json_body={}), clock)
    node.get_project("A/B C")
    assert t.seen[0].path == "projects/A%2FB%20C"


def test_variables_get_and_put(clock: FakeClock) -> None:
    store: dict[str, Any] = {"standard": {"a": 1}, "local": {"b": 2}}

    def put(seen: Seen) -> Reply:
        store.clear()
        store.update(seen.json())
        return Reply(204)

    node, t = make_node(
        router(
            {
                ("GET", "projects/CHURN/variables/"): lambda s: Reply(json_body=store),
                ("PUT", "projects/CHURN/variables/"): put,
            }
        ),
        clock,
    )
    assert node.get_variables("CHURN") == {"standard": {"a": 1}, "local": {"b": 2}}
    node.set_variables("CHURN", {"standard": {"a": 5}, "local": {}})
    assert node.get_variables("CHURN")["standard"] == {"a": 5}
    assert t.seen[1].headers["Content-Type"] == "application/json"
    with pytest.raises(DSSError, match="both 'standard' and 'local'"):
        node.set_variables("CHURN", {"standard": {}})


def test_export_list_delete_exported(clock: FakeClock) -> None:
    node, t = make_node(
        router(
            {
                ("PUT", "projects/CHURN/bundles/exported/b1"): Reply(json_body={"bundleId": "b1"}),
                ("GET", "projects/CHURN/bundles/exported"): Reply(
                    json_body={"bundles": [{"bundleId": "b1"}]}
                ),
                ("DELETE", "projects/CHURN/bundles/exported/b1"): Reply(json_body={}),
                ("PUT", "projects/CHURN/bundles/exported/dup"): dss_error(409, message="bundle dup exists"),
            }
        ),
        clock,
    )
    assert node.export_bundle("CHURN", "b1", release_notes="fix: x")["bundleId"] == "b1"
    assert t.seen[0].query == {"releaseNotes": "fix: x", "evaluateProjectStandardsChecks": "true"}
    assert node.list_exported_bundles("CHURN") == [{"bundleId": "b1"}]
    node.delete_exported_bundle("CHURN", "b1")
    assert t.seen[-1].method == "DELETE"
    with pytest.raises(DSSConflict) as info:
        node.export_bundle("CHURN", "dup")
    assert info.value.status == 409 and "export bundle dup of project CHURN" in str(info.value)


def _bundle_zip(path: Path, bundle_id: str, project: str = "CHURN") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"bundleId": bundle_id, "projectKey": project}))
        zf.writestr("project/project.json", "{}")
    return path


def test_imported_bundles_preload_activate(clock: FakeClock, tmp_path: Path) -> None:
    archive = _bundle_zip(tmp_path / "b7.zip", "b7")
    node, t = make_node(
        router(
            {
                ("POST", "projects/CHURN/bundles/imported/actions/importFromStream"): Reply(200),
                ("GET", "projects/CHURN/bundles/imported"): Reply(
                    json_body={"bundles": [{"bundleId": "b7"}]}
                ),
                ("POST", "projects/CHURN/bundles/imported/b7/actions/preload"): Reply(json_body={"ok": True}),
                ("POST", "projects/CHURN/bundles/imported/b7/actions/activate"): Reply(
                    json_body={"anyMessage": False, "messages": []}
                ),
            }
        ),
        clock,
    )
    assert node.import_bundle("CHURN", archive) == {"bundleId": "b7"}
    assert node.list_imported_bundles("CHURN") == [{"bundleId": "b7"}]
    assert node.preload_bundle("CHURN", "b7") == {"ok": True}
    report = node.activate_bundle("CHURN", "b7", scenarios_active={"TEST_SMOKE": False})
    assert report == {"anyMessage": False, "messages": []}
    assert t.seen[-1].json() == {"scenariosActiveOnActivation": {"TEST_SMOKE": False}}
    node.activate_bundle("CHURN", "b7")
    assert t.seen[-1].json() == {}


def test_activate_with_remappings_writes_them_to_the_settings_not_the_body(clock: FakeClock) -> None:
    settings: dict[str, Any] = {"projectKey": "CHURN", "bundleContainerSettings": {}}

    def put(seen: Seen) -> Reply:
        settings.update(seen.json())
        return Reply(204, body=b"")

    node, t = make_node(
        router(
            {
                ("GET", "projects/CHURN/settings"): lambda s: Reply(json_body=dict(settings)),
                ("PUT", "projects/CHURN/settings"): put,
                ("POST", "projects/CHURN/bundles/imported/b7/actions/activate"): Reply(json_body={}),
            }
        ),
        clock,
    )
    node.activate_bundle("CHURN", "b7", connection_remappings={"warehouse": "wh_test"})
    assert [s.method for s in t.seen] == ["GET", "PUT", "GET", "POST"]  # read back before activating
    assert t.seen[-1].json() == {}
    assert settings["bundleContainerSettings"] == {
        "remapping": {"connections": [{"source": "warehouse", "target": "wh_test"}]}
    }


def test_create_project_from_bundle(clock: FakeClock, tmp_path: Path) -> None:
    archive = _bundle_zip(tmp_path / "b1.zip", "b1", project="NEWP")
    node, t = make_node(
        router({("POST", "projectsFromBundle/"): Reply(json_body={"projectKey": "NEWP"})}),
        clock,
    )
    assert node.create_project_from_bundle(archive)["projectKey"] == "NEWP"
    assert t.seen[0].headers["Content-Type"].startswith("multipart/form-data; boundary=")


def test_scenario_operations(clock: FakeClock) -> None:
    base = "projects/CHURN/scenarios/"
    run = {"runId": "r1", "start": 1, "end": 2, "result": {"outcome": "SUCCESS"}}
    node, t = make_node(
        router(
            {
                ("GET", base): Reply(json_body=[{"id": "TEST_A", "running": False}]),
                ("POST", base + "TEST_A/run"): Reply(
                    json_body={"trigger": {"id": "manual"}, "runId": "tr1", "cancelled": False}
                ),
                ("GET", base + "TEST_A/get-run-for-trigger"): lambda s: Reply(
                    json_body={"scenarioRun": run} if s.query.get("triggerRunId") == "tr1" else {}
                ),
                ("GET", base + "TEST_A/get-last-runs"): Reply(json_body=[run]),
                ("GET", base + "TEST_A/r1/"): Reply(json_body={"scenarioRun": run, "stepRuns": []}),
                ("GET", base + "TEST_A/r1/log"): Reply(
                    body=b"line1\nline2\n", headers={"Content-Type": "text/plain"}
                ),
                ("GET", base + "TEST_A/r1/scenario-run-report"): Reply(body=b"<testsuite/>"),
                ("POST", base + "TEST_A/abort"): Reply(json_body={}),
            }
        ),
        clock,
    )
    assert node.list_scenarios("CHURN") == [{"id": "TEST_A", "running": False}]
    fire = node.run_scenario("CHURN", "TEST_A", {"x": 1})
    assert fire["runId"] == "tr1" and t.seen[-1].json() == {"x": 1}
    assert node.get_run_for_trigger("CHURN", "TEST_A", "manual", "tr1") == run
    assert t.seen[-1].query == {"triggerId": "manual", "triggerRunId": "tr1"}
    assert node.get_run_for_trigger("CHURN", "TEST_A", "manual", "other") is None
    assert node.get_last_runs("CHURN", "TEST_A", limit=3, only_finished=True) == [run]
    assert t.seen[-1].query == {"limit": "3", "onlyFinishedRuns": "true"}
    assert node.get_run("CHURN", "TEST_A", "r1")["scenarioRun"]["runId"] == "r1"
    assert node.get_run_log("CHURN", "TEST_A", "r1") == "line1\nline2\n"
    node.get_run_log("CHURN", "TEST_A", "r1", step_id="s1")
    assert t.seen[-1].query == {"stepId": "s1"}
    assert node.get_run_junit("CHURN", "TEST_A", "r1") == b"<testsuite/>"
    node.abort_scenario("CHURN", "TEST_A")
    assert t.seen[-1].method == "POST" and t.seen[-1].path.endswith("TEST_A/abort")


def test_futures_get_and_abort(clock: FakeClock) -> None:
    node, t = make_node(
        router(
            {
                ("GET", "futures/j1"): Reply(json_body={"jobId": "j1", "hasResult": False, "alive": True}),
                ("DELETE", "futures/j1"): Reply(204),
            }
        ),
        clock,
    )
    assert node.get_future("j1", peek=True)["alive"] is True
    assert t.seen[-1].query == {"peek": "true"}
    node.abort_future("j1")
    assert t.seen[-1].method == "DELETE"


def test_download_bundle_uses_archive_path(clock: FakeClock, tmp_path: Path) -> None:
    data = io.BytesIO(b"PK" + b"z" * 1000).getvalue()
    node, t = make_node(
        router({("GET", "projects/CHURN/bundles/exported/b1/archive"): Reply(body=data)}),
        clock,
    )
    tr = node.download_bundle("CHURN", "b1", tmp_path / "b1.zip")
    assert tr.size == len(data) and (tmp_path / "b1.zip").read_bytes() == data
    assert t.seen[0].headers["Accept-Encoding"] == "identity"


def test_connection_remappings_written_into_project_settings_keeping_other_keys(clock: FakeClock) -> None:
    stored: dict[str, Any] = {
        "projectKey": "CHURN",
        "settings": {"codeEnvs": {"python": {"mode": "USE_BUILTIN_MODE"}}},
        "bundleContainerSettings": {
            "remapping": {"connections": [{"source": "old", "target": "x"}], "codeEnvs": []},
            "keep": 1,
        },
    }

    def put(seen: Seen) -> Reply:
        stored.clear()
        stored.update(seen.json())
        return Reply(204, body=b"")

    node, t = make_node(
        router(
            {
                ("GET", "projects/CHURN/settings"): lambda s: Reply(json_body=json.loads(json.dumps(stored))),
                ("PUT", "projects/CHURN/settings"): put,
            }
        ),
        clock,
    )
    assert node.set_connection_remappings("CHURN", {"warehouse": "wh_test", "files": "files_test"})
    assert [(s.method, s.path) for s in t.seen] == [
        ("GET", "projects/CHURN/settings"),
        ("PUT", "projects/CHURN/settings"),
        ("GET", "projects/CHURN/settings"),
    ]
    assert stored["settings"] == {"codeEnvs": {"python": {"mode": "USE_BUILTIN_MODE"}}}
    assert stored["bundleContainerSettings"] == {
        "remapping": {
            "connections": [
                {"source": "files", "target": "files_test"},
                {"source": "warehouse", "target": "wh_test"},
            ],
            "codeEnvs": [],
        },
        "keep": 1,
    }
    assert node.get_project_settings("CHURN") == stored
    assert node.get_connection_remappings("CHURN") == {"warehouse": "wh_test", "files": "files_test"}
    assert not node.set_connection_remappings("CHURN", {"files": "files_test", "warehouse": "wh_test"})
    assert [s.method for s in t.seen].count("PUT") == 1  # same remappings: nothing written


def test_list_connections_by_name_and_forbidden_without_admin(clock: FakeClock) -> None:
    node, _t = make_node(
        router({("GET", "admin/connections/"): Reply(json_body={"wh": {"name": "wh", "type": "Oracle"}})}),
        clock,
    )
    assert node.list_connections() == {"wh": {"name": "wh", "type": "Oracle"}}
    denied, _ = make_node(router({("GET", "admin/connections/"): dss_error(403)}), clock)
    with pytest.raises(DSSError) as info:
        denied.list_connections()
    assert info.value.status == 403
