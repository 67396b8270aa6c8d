"""The client against real DSS's answers where they differ from the old stand-in (issue 11, items 1-9)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from mlcd.dss.errors import DSSBadRequest, DSSForbidden, DSSNotFound, DSSSettingsNotKept
from mlcd.dss.waiter import ScenarioWaiter
from mlcd.errors import ExitCode
from support.dssfakes import FakeClock, Reply, Seen, dss_error, make_node

READ_TIMEOUT = requests.exceptions.ReadTimeout("read timed out")
UNAUTHORIZED = "com.dataiku.dip.exceptions.UnauthorizedException"
KEY_PATH = "bundleContainerSettings.remapping.connections"


def test_remapping_dropped_by_dss_is_caught_by_reading_the_settings_back(clock: FakeClock) -> None:
    """Item 1: a DSS ignoring the written key must not leave the project bound to same-named connections."""
    stored: dict[str, Any] = {"projectKey": "CHURN", "settings": {}}

    def handle(seen: Seen) -> Reply:
        if seen.method == "PUT":  # answers success but keeps nothing it does not know
            stored["settings"] = seen.json().get("settings", {})
            return Reply(204, body=b"")
        return Reply(json_body=json.loads(json.dumps(stored)))

    node, t = make_node(handle, clock)
    with pytest.raises(DSSSettingsNotKept) as info:
        node.activate_bundle("CHURN", "b2", connection_remappings={"warehouse": "wh_prod"})
    assert info.value.exit_code == ExitCode.DEPLOY_FAILED
    assert KEY_PATH in info.value.one_line() and "warehouse" in info.value.one_line()
    assert "\n" not in info.value.one_line()
    assert t.count("POST", "actions/activate") == 0  # nothing activated


def test_missing_project_answered_401_is_absent_not_a_bad_key(clock: FakeClock) -> None:
    """Item 3: real DSS answers an unknown project with 401 "Failed to read project permissions"."""

    def handle(seen: Seen) -> Reply:
        if seen.path == "projects/":
            return Reply(json_body=[{"projectKey": "OTHER"}])
        return dss_error(401, message="Failed to read project permissions", error_type=UNAUTHORIZED)

    node, t = make_node(handle, clock)
    assert node.project_exists("CHURN") is False
    assert [s.path for s in t.seen] == ["projects/"]  # found by listing keys, as Dataiku's samples do
    with pytest.raises(DSSNotFound) as info:
        node.list_imported_bundles("CHURN")
    assert "project CHURN does not exist" in info.value.one_line()


def test_preload_is_sent_once_with_its_own_timeout(clock: FakeClock) -> None:
    """Item 4: preload builds code envs; a slow one must not be sent twice under the 60 s read timeout."""
    node, t = make_node(lambda s: Reply(raise_exc=READ_TIMEOUT), clock, preload_timeout=2400.0)
    with pytest.raises(Exception, match="read timeout"):
        node.preload_bundle("CHURN", "b2")
    assert t.count("POST", "actions/preload") == 1
    assert t.seen[0].timeout[1] == 2400.0


def test_failed_preload_report_fails_with_the_code_env_message(clock: FakeClock, caplog: Any) -> None:
    """Item 4: the preload report is shown and a failed code-environment build is an error."""
    report = {
        "anyMessage": True,
        "success": False,
        "messages": [
            {"severity": "WARNING", "message": "plugin x is older"},
            {"severity": "ERROR", "isFatal": True, "code": "ERR_CODEENV_INSTALL_FAILED",
             "message": "Failed to build code env 'py39_ml': pip install failed"},
        ],
    }  # fmt: skip
    node, _ = make_node(lambda s: Reply(json_body=report), clock)
    with caplog.at_level("INFO", logger="mlcd.dss"), pytest.raises(DSSBadRequest) as info:
        node.preload_bundle("CHURN", "b2")
    assert "Failed to build code env 'py39_ml'" in info.value.one_line()
    assert info.value.code == "ERR_CODEENV_INSTALL_FAILED"
    assert "plugin x is older" in caplog.text


def test_activation_refused_as_a_report_is_a_refusal(clock: FakeClock) -> None:
    """Item 5: "a fatal error" may be a 200 report; it must be handled as the HTTP-error form."""
    refusal = {
        "success": False,
        "messages": [{"severity": "ERROR", "isFatal": True, "code": "ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION",
                      "message": "Connection 'warehouse' does not exist"}],
    }  # fmt: skip

    def handle(seen: Seen) -> Reply:
        if seen.path == "projects/":
            return Reply(json_body=[{"projectKey": "CHURN", "activeBundleState": {"bundleId": "b1"}}])
        return Reply(json_body=refusal)

    node, _ = make_node(handle, clock)
    with pytest.raises(DSSBadRequest) as info:
        node.activate_bundle("CHURN", "b2")
    assert info.value.code == "ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION"
    assert "Connection 'warehouse' does not exist" in info.value.one_line()


def test_imported_bundle_fields_are_read_nested_and_flat(clock: FakeClock) -> None:
    """Item 6: the DSS UI reads importState.importedOn and exportManifest.exportUserInfo.exportedOn."""
    items = [
        {"bundleId": "b1", "importState": {"importedOn": 111},
         "exportManifest": {"exportUserInfo": {"exportedOn": 100, "exportedBy": {"login": "ci"}}}},
        {"bundleId": "b2", "importedOn": 222, "exportedOn": 200},
    ]  # fmt: skip
    node, _ = make_node(lambda s: Reply(json_body={"bundles": items}), clock)
    got = {b["bundleId"]: (b["importedOn"], b["exportedOn"]) for b in node.list_imported_bundles("CHURN")}
    assert got == {"b1": (111, 100), "b2": (222, 200)}


def test_connections_listing_refused_with_401_is_like_403(clock: FakeClock) -> None:
    """Item 7: a non-admin key may get 401; the deploy's pre-check must be skipped, not aborted."""
    node, _ = make_node(lambda s: dss_error(401, error_type=UNAUTHORIZED, message="not admin"), clock)
    with pytest.raises(DSSForbidden):
        node.list_connections()


def test_java_stack_trace_is_cut_to_one_line_message_first(clock: FakeClock) -> None:
    """Item 8: detailedMessage may hold a whole Java stack trace."""
    trace = "java.lang.IllegalArgumentException: Connection 'x' does not exist\n" + "\n".join(
        f"\tat com.dataiku.dip.Foo.bar(Foo.java:{i})" for i in range(80)
    )
    node, _ = make_node(lambda s: dss_error(400, message=trace), clock)
    with pytest.raises(DSSBadRequest) as info:
        node.get_project_settings("CHURN")
    line = info.value.one_line()
    assert "\n" not in line and "Foo.java" not in line and len(line) < 300
    assert line.endswith("Connection 'x' does not exist")
    # the trace stays available for --debug, bounded like every body the HTTP layer reads
    assert info.value.trace.startswith("\tat com.dataiku.dip.Foo.bar(Foo.java:0)")


def test_failing_build_step_message_comes_from_additional_report_items(clock: FakeClock) -> None:
    """Item 8: build steps carry their error in additionalReportItems[].thrown."""
    run = {"runId": "r1", "start": 1, "end": 2, "result": {"outcome": "FAILED"}}
    details = {
        "scenarioRun": run,
        "stepRuns": [{
            "step": {"id": "build", "name": "Build model"}, "result": {"outcome": "FAILED"},
            "additionalReportItems": [
                {"type": "JOB_EXECUTED", "jobId": "j1", "outcome": "FAILED",
                 "thrown": {"clazz": "com.dataiku.dip.exceptions.CodedException",
                            "message": "Job failed: column 'churn' not found"}},
            ],
        }],
    }  # fmt: skip

    def handle(seen: Seen) -> Reply:
        if seen.path.endswith("scenarios/"):
            return Reply(json_body=[{"id": "TEST_X", "running": False}])
        if seen.path.endswith("/run"):
            return Reply(json_body={"trigger": {"id": "t"}, "runId": "tr", "cancelled": False})
        if seen.path.endswith("get-run-for-trigger"):
            return Reply(json_body={"scenarioRun": run})
        if seen.path.endswith("/log"):
            return Reply(body=b"log")
        return Reply(json_body=details)

    node, _ = make_node(handle, clock)
    result = ScenarioWaiter(node, "CHURN", tick=0.1).run("TEST_X", 60)
    assert result.outcome == "FAILED" and result.failing_step_name == "Build model"
    assert result.error_message == "Job failed: column 'churn' not found"
    assert result.thrown_messages == ["Job failed: column 'churn' not found"]


def test_export_still_building_after_a_read_timeout_is_waited_for(clock: FakeClock) -> None:
    """Item 9: after a lost answer the list may show an unfinished export; it must not count as done."""
    state = {"lists": 0}

    def handle(seen: Seen) -> Reply:
        if seen.method == "PUT":
            return Reply(raise_exc=READ_TIMEOUT)
        state["lists"] += 1
        building = state["lists"] < 4
        item = {"bundleId": "b9", "state": "BUILDING" if building else "BUILT"}
        return Reply(json_body={"bundles": [item]})

    node, t = make_node(handle, clock)
    assert node.export_bundle("CHURN", "b9") == {"bundleId": "b9", "recovered": True}
    assert state["lists"] == 4 and t.count("PUT", "exported/b9") == 1
    assert t.seen[0].query["evaluateProjectStandardsChecks"] == "true"


def test_activation_still_running_after_a_read_timeout_is_not_sent_again(clock: FakeClock) -> None:
    """Item 9: a large project's activation runs in the background; re-sending it would activate twice."""
    state = {"lists": 0}

    def handle(seen: Seen) -> Reply:
        if seen.method == "POST":
            return Reply(raise_exc=READ_TIMEOUT)
        state["lists"] += 1
        active = "b2" if state["lists"] >= 5 else "b1"
        return Reply(json_body=[{"projectKey": "CHURN", "activeBundleState": {"bundleId": active}}])

    node, t = make_node(handle, clock)
    assert node.activate_bundle("CHURN", "b2") == {"bundleId": "b2", "recovered": True}
    assert t.count("POST", "actions/activate") == 1


def test_project_standards_findings_are_surfaced(clock: FakeClock, caplog: Any) -> None:
    """Item 9: DSS 14.1+ evaluates Project Standards on export; its findings are shown."""
    answer = {"bundleId": "b1", "projectStandardsCheckReport": {"checks": [
        {"checkName": "has-description", "result": {"status": "RUN_SUCCESS", "severity": 3,
                                                    "message": "project has no description"}},
        {"checkName": "ok-check", "result": {"status": "RUN_SUCCESS", "severity": 0, "message": ""}},
    ]}}  # fmt: skip
    node, t = make_node(lambda s: Reply(json_body=answer), clock, project_standards_checks=False)
    with caplog.at_level("WARNING", logger="mlcd.dss"):
        out = node.export_bundle("CHURN", "b1")
    assert out["projectStandardsFindings"] == [
        "has-description: RUN_SUCCESS, severity 3: project has no description"
    ]
    assert "project has no description" in caplog.text
    assert t.seen[0].query["evaluateProjectStandardsChecks"] == "false"


def test_stack_trace_is_logged_only_at_debug_level(clock: FakeClock, caplog: Any) -> None:
    """Item 8: the trace is for --debug (the CLI's DEBUG logging), never in the error line."""
    trace = "Boom happened\n\tat com.dataiku.dip.Foo.bar(Foo.java:7)"
    node, _ = make_node(lambda s: dss_error(400, message=trace), clock)
    with caplog.at_level("INFO", logger="mlcd.dss"), pytest.raises(DSSBadRequest):
        node.get_project_settings("CHURN")
    assert "Foo.java:7" not in caplog.text
    caplog.clear()
    with caplog.at_level("DEBUG", logger="mlcd.dss"), pytest.raises(DSSBadRequest):
        node.get_project_settings("CHURN")
    assert "Foo.java:7" in caplog.text
