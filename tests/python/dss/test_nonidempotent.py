"""Non-idempotent calls are never blindly retried: the node's state is checked first."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import requests

from mlcd.dss.errors import DSSConflict, DSSError, DSSUnavailable, DSSUnreachable
from mlcd.dss.http import RetryPolicy
from support.dssfakes import FakeClock, Reply, Seen, dss_error, make_node

READ_TIMEOUT = requests.exceptions.ReadTimeout("read timed out")
RESET = requests.exceptions.ConnectionError("connection reset by peer")


def _archive(tmp_path: Path, bundle_id: str = "b9", project: str = "CHURN") -> Path:
    path = tmp_path / f"{bundle_id}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"bundleId": bundle_id, "projectKey": project}))
    return path


class Activation:
    """An automation node whose activate answer is lost; `applied` says whether it took effect."""

    def __init__(self, applied: bool, fault: Reply) -> None:
        self.applied = applied
        self.fault = fault
        self.active = "b1"
        self.posts = 0

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "POST" and seen.path.endswith("/actions/activate"):
            self.posts += 1
            if self.posts == 1:
                if self.applied:
                    self.active = "b9"
                return self.fault
            self.active = "b9"
            return Reply(json_body={"messages": []})
        if seen.method == "GET" and seen.path == "projects/":
            return Reply(json_body=[{"projectKey": "CHURN", "activeBundleState": {"bundleId": self.active}}])
        return dss_error(404)


@pytest.mark.parametrize("fault", [Reply(raise_exc=READ_TIMEOUT), dss_error(503), dss_error(502)])
def test_activate_that_took_effect_is_not_sent_again(clock: FakeClock, fault: Reply) -> None:
    fake = Activation(applied=True, fault=fault)
    node, t = make_node(fake, clock)
    report = node.activate_bundle("CHURN", "b9")
    assert report["recovered"] is True
    assert fake.posts == 1
    assert t.count("GET", "projects/") == 1


def test_activate_that_did_not_take_effect_is_sent_again(clock: FakeClock) -> None:
    fake = Activation(applied=False, fault=Reply(raise_exc=requests.exceptions.ConnectionError("reset")))
    node, t = make_node(fake, clock)
    assert node.activate_bundle("CHURN", "b9") == {"messages": []}
    assert fake.posts == 2
    # the state was read between the two POSTs
    methods = [(s.method, s.path) for s in t.seen]
    assert methods.index(("GET", "projects/")) < len(methods) - 1


def test_activate_gives_up_after_policy_and_reports_operation(clock: FakeClock) -> None:
    def handler(seen: Seen) -> Reply:
        if seen.method == "POST":
            return dss_error(503)
        return Reply(json_body=[{"projectKey": "CHURN", "activeBundleState": {"bundleId": "b1"}}])

    node, t = make_node(handler, clock, retry=RetryPolicy(max_attempts=3, max_total_s=60))
    with pytest.raises(DSSUnavailable) as info:
        node.activate_bundle("CHURN", "b9")
    assert t.count("POST", "actions/activate") == 3
    assert "activate bundle b9 of project CHURN" in str(info.value)


def test_activate_state_unknown_when_check_fails(clock: FakeClock) -> None:
    node, t = make_node(
        lambda s: Reply(raise_exc=requests.exceptions.ConnectionError("down")),
        clock,
        retry=RetryPolicy(max_attempts=2, max_total_s=5),
    )
    with pytest.raises(DSSUnreachable, match="unknown whether the step took effect"):
        node.activate_bundle("CHURN", "b9")
    assert t.count("POST", "actions/activate") == 1


def test_http_error_on_activate_is_not_retried(clock: FakeClock) -> None:
    node, t = make_node(lambda s: dss_error(400, "ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION"), clock)
    with pytest.raises(Exception, match="ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION"):
        node.activate_bundle("CHURN", "b9")
    assert len(t.seen) == 1


class Importer:
    def __init__(self, applied: bool) -> None:
        self.applied = applied
        self.imported: list[str] = ["b1"]
        self.posts = 0

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "POST" and seen.path.endswith("importFromStream"):
            self.posts += 1
            if self.posts == 1:
                if self.applied:
                    self.imported.append("b9")
                return Reply(raise_exc=READ_TIMEOUT)
            self.imported.append("b9")
            return Reply(200)
        if seen.method == "GET" and seen.path.endswith("bundles/imported"):
            return Reply(json_body={"bundles": [{"bundleId": b} for b in self.imported]})
        return dss_error(404)


def test_import_read_timeout_but_imported_is_not_sent_again(clock: FakeClock, tmp_path: Path) -> None:
    fake = Importer(applied=True)
    node, _ = make_node(fake, clock)
    assert node.import_bundle("CHURN", _archive(tmp_path)) == {"bundleId": "b9", "recovered": True}
    assert fake.posts == 1


def test_import_not_imported_is_uploaded_again_with_a_fresh_body(clock: FakeClock, tmp_path: Path) -> None:
    fake = Importer(applied=False)
    node, t = make_node(fake, clock)
    assert node.import_bundle("CHURN", _archive(tmp_path))["bundleId"] == "b9"
    assert fake.posts == 2
    bodies = [s.body for s in t.seen if s.method == "POST"]
    assert all(b"manifest.json" in b for b in bodies)


def test_import_without_manifest_uses_before_and_after_lists(clock: FakeClock, tmp_path: Path) -> None:
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("x.txt", "x")
    fake = Importer(applied=True)
    node, _t = make_node(fake, clock)
    assert node.import_bundle("CHURN", plain) == {"bundleId": "b9", "recovered": True}
    assert fake.posts == 1


def test_create_project_from_bundle_checks_project_exists(clock: FakeClock, tmp_path: Path) -> None:
    state = {"posts": 0}

    def handler(seen: Seen) -> Reply:
        if seen.method == "POST":
            state["posts"] += 1
            return dss_error(504)
        if seen.path == "projects/":  # found by listing keys, as a missing project's URL answers 401
            return Reply(json_body=[{"projectKey": "CHURN"}])
        return dss_error(404)

    node, _ = make_node(handler, clock)
    assert node.create_project_from_bundle(_archive(tmp_path)) == {"projectKey": "CHURN", "recovered": True}
    assert state["posts"] == 1


def test_export_bundle_checks_exported_list(clock: FakeClock) -> None:
    state = {"puts": 0}

    def handler(seen: Seen) -> Reply:
        if seen.method == "PUT":
            state["puts"] += 1
            return Reply(raise_exc=READ_TIMEOUT)
        return Reply(json_body={"bundles": [{"bundleId": "b9"}]})

    node, _ = make_node(handler, clock)
    assert node.export_bundle("CHURN", "b9")["recovered"] is True
    assert state["puts"] == 1


class Runner:
    """A scenario whose run POST answer is lost; `started` says whether a run began."""

    def __init__(
        self,
        started: bool,
        clock: FakeClock,
        run_start_offset_s: float = 0.5,
        fault: Exception = READ_TIMEOUT,
    ) -> None:
        self.fault = fault
        self.started = started
        self.clock = clock
        self.offset = run_start_offset_s
        self.posts = 0
        self.runs: list[dict[str, object]] = [{"runId": "old", "start": int((clock.wall() - 3600) * 1000)}]

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "POST" and seen.path.endswith("/run"):
            self.posts += 1
            if self.posts == 1:
                if self.started:
                    self.runs.insert(
                        0, {"runId": "new", "start": int((self.clock.wall() + self.offset) * 1000)}
                    )
                return Reply(raise_exc=self.fault)
            return Reply(json_body={"trigger": {"id": "manual"}, "runId": "tr2", "cancelled": False})
        if seen.path.endswith("get-last-runs"):
            return Reply(json_body=self.runs)
        if seen.path.endswith("scenarios/"):
            return Reply(json_body=[{"id": "TEST_A", "running": self.started}])
        return dss_error(404)


def test_run_that_started_is_not_triggered_again(clock: FakeClock) -> None:
    fake = Runner(started=True, clock=clock)
    node, _t = make_node(fake, clock)
    fire = node.run_scenario("CHURN", "TEST_A")
    assert fire["recovered"] is True and fire["scenarioRun"]["runId"] == "new"
    assert fake.posts == 1


def test_run_lost_to_a_reset_that_did_not_start_is_triggered_again(clock: FakeClock) -> None:
    fake = Runner(started=False, clock=clock, fault=RESET)
    node, t = make_node(fake, clock)
    fire = node.run_scenario("CHURN", "TEST_A")
    assert fire["runId"] == "tr2"
    assert fake.posts == 2
    assert t.count("GET", "get-last-runs") >= 1  # the old run does not count as ours


def test_unanswered_trigger_is_never_sent_again(clock: FakeClock) -> None:
    """A read timeout means the node got the trigger and may still start it: wait, never resend."""
    fake = Runner(started=False, clock=clock)
    node, t = make_node(fake, clock)
    with pytest.raises(DSSError, match="not sent again, to avoid a second run"):
        node.run_scenario("CHURN", "TEST_A")
    assert fake.posts == 1
    assert t.count("GET", "get-last-runs") >= 5  # it kept looking for the run, bounded


def test_run_in_progress_of_unknown_origin_fails_clearly(clock: FakeClock) -> None:
    fake = Runner(started=False, clock=clock, fault=RESET)
    fake.started = False

    def handler(seen: Seen) -> Reply:
        if seen.path.endswith("scenarios/"):
            return Reply(json_body=[{"id": "TEST_A", "running": True}])
        return fake(seen)

    node, _ = make_node(handler, clock)
    with pytest.raises(DSSUnreachable, match="not known whether it is ours"):
        node.run_scenario("CHURN", "TEST_A")
    assert fake.posts == 1


@pytest.mark.parametrize(("listed_on", "recovered"), [(1700, True), (1699, False)])
def test_import_conflict_with_the_same_archive_still_importing_is_recovered(
    clock: FakeClock, tmp_path: Path, listed_on: int, recovered: bool
) -> None:
    """A killed mlcd's import finished after the new deploy listed the bundles: 409, same archive."""
    archive = tmp_path / "b9.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        manifest = {"bundleId": "b9", "projectKey": "CHURN", "exportedOn": 1700}
        zf.writestr("manifest.json", json.dumps(manifest))

    def handler(seen: Seen) -> Reply:
        if seen.method == "POST":
            return dss_error(409, "ERR_BUNDLE_ALREADY_IMPORTED", "already imported")
        return Reply(json_body={"bundles": [{"bundleId": "b9", "exportedOn": listed_on}]})

    node, _ = make_node(handler, clock)
    if recovered:
        assert node.import_bundle("CHURN", archive, bundle_id="b9") == {"bundleId": "b9", "recovered": True}
    else:
        with pytest.raises(DSSConflict):
            node.import_bundle("CHURN", archive, bundle_id="b9")
