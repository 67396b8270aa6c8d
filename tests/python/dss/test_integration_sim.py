"""The DSS client against real stand-in nodes over loopback (no mocking of mlcd code)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlcd.dss.errors import (
    DSSBadRequest,
    DSSConflict,
    DSSNotFound,
    DSSRunCancelled,
    DSSUnauthorized,
    DSSUnreachable,
)
from mlcd.dss.http import RetryPolicy
from mlcd.dss.node import DSSNode
from mlcd.dss.waiter import ScenarioWaiter
from mlcd.errors import ExitCode
from mlcd.redact import clear_secrets

try:
    from mlcd.sim.launcher import SimNode
except ImportError:  # pragma: no cover - only while the stand-in is being built
    pytest.skip("mlcd.sim.launcher (the DSS stand-in) cannot be imported", allow_module_level=True)

KEY = "sim-integration-key-5d4c3b2a"
PROJECT = "CLIENTIT"
FAST_RETRY = RetryPolicy(max_attempts=4, max_total_s=20.0, initial_s=0.2, max_wait_s=1.0)


def _write_project(root: Path) -> None:
    (root / "scenarios").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "project.json").write_text(
        json.dumps(
            {"projectKey": PROJECT, "name": "client IT", "owner": "tests", "connections": ["warehouse"]}
        )
    )
    (root / "variables.json").write_text(json.dumps({"standard": {"threshold": 0.8}, "local": {}}))
    (root / "scripts" / "ok.py").write_text("print('all good')\n")
    (root / "scripts" / "fail.py").write_text(
        textwrap.dedent(
            """\
            import sys
            for i in range(60):
                print(f"scoring batch {i}")
            sys.stdout.flush()
            print("accuracy 0.61 below 0.8", file=sys.stderr)
            sys.exit(1)
            """
        )
    )
    scenarios: dict[str, list[dict[str, Any]]] = {
        "TEST_OK": [{"id": "check", "name": "Check", "type": "python", "script": "scripts/ok.py"}],
        "TEST_FAIL": [
            {"id": "prepare", "name": "Prepare", "type": "python", "script": "scripts/ok.py"},
            {"id": "quality", "name": "Quality gate", "type": "python", "script": "scripts/fail.py"},
        ],
        "TEST_SLOW": [{"id": "pause", "name": "Pause", "type": "wait", "seconds": 120.0}],
        "TEST_PAUSE": [{"id": "pause", "name": "Pause", "type": "wait", "seconds": 2.0}],
    }
    for sid, steps in scenarios.items():
        (root / "scenarios" / f"{sid}.json").write_text(
            json.dumps({"id": sid, "name": sid, "markedAsTest": True, "active": False, "steps": steps})
        )


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimNode]:
    data = tmp_path_factory.mktemp("design")
    _write_project(data / "projects" / PROJECT)
    node = SimNode.start(role="design", data_dir=data, api_key=KEY, node_name="design")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def automation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimNode]:
    data = tmp_path_factory.mktemp("automation")
    node = SimNode.start(
        role="automation",
        data_dir=data,
        api_key=KEY,
        node_name="test",
        connections={"warehouse_test": {"type": "PostgreSQL"}},
    )
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(autouse=True)
def _no_faults(design: SimNode, automation: SimNode) -> Iterator[None]:
    yield
    design.clear_faults()
    automation.clear_faults()
    clear_secrets()


def client(sim: SimNode, **kwargs: Any) -> DSSNode:
    kwargs.setdefault("retry", FAST_RETRY)
    return DSSNode(sim.url, kwargs.pop("api_key", KEY), name=sim.node_name, **kwargs)


def test_auth_and_node_info(design: SimNode) -> None:
    node = client(design)
    assert node.instance_info().get("nodeType") == "DESIGN"
    assert node.auth_info()
    wrong = "wrong-key-0123456789"
    bad = client(design, api_key=wrong)
    with pytest.raises(DSSUnauthorized) as info:
        bad.list_projects()
    assert info.value.status == 401 and info.value.exit_code == ExitCode.NODE_UNREACHABLE
    assert wrong not in str(info.value) and wrong not in repr(info.value)


def test_unreachable_node(tmp_path: Path) -> None:
    node = DSSNode("http://127.0.0.1:9", KEY, name="gone", retry=RetryPolicy(max_attempts=2, initial_s=0.05))
    with pytest.raises(DSSUnreachable) as info:
        node.instance_info()
    assert info.value.exit_code == ExitCode.NODE_UNREACHABLE and "gone" in str(info.value)


def test_projects_variables_and_not_found(design: SimNode) -> None:
    node = client(design)
    assert PROJECT in [p["projectKey"] for p in node.list_projects()]
    assert node.project_exists(PROJECT) and not node.project_exists("NOPE")
    with pytest.raises(DSSNotFound) as info:
        node.get_project("NOPE")
    assert info.value.status == 404 and info.value.exit_code == ExitCode.BAD_INPUT
    variables = node.get_variables(PROJECT)
    assert variables["standard"]["threshold"] == 0.8
    variables["local"] = {"who": "ci"}
    node.set_variables(PROJECT, variables)
    assert node.get_variables(PROJECT)["local"] == {"who": "ci"}


def test_bundle_export_download_import_activate(design: SimNode, automation: SimNode, tmp_path: Path) -> None:
    d, a = client(design), client(automation)
    d.export_bundle(PROJECT, "b_one", release_notes="first")
    d.export_bundle(PROJECT, "b_two")
    assert {"b_one", "b_two"} <= {b["bundleId"] for b in d.list_exported_bundles(PROJECT)}
    with pytest.raises(DSSConflict):
        d.export_bundle(PROJECT, "b_one")
    progress: list[tuple[int, int | None]] = []
    one = d.download_bundle(
        PROJECT, "b_one", tmp_path / "b_one.zip", progress=lambda n, t: progress.append((n, t))
    )
    two = d.download_bundle(PROJECT, "b_two", tmp_path / "b_two.zip")
    assert one.sha256 == hashlib.sha256(one.path.read_bytes()).hexdigest()
    assert one.size == one.path.stat().st_size and progress[-1][0] == one.size

    if not a.project_exists(PROJECT):
        created = a.create_project_from_bundle(one.path)
        assert created.get("projectKey", PROJECT) == PROJECT
    assert a.project_exists(PROJECT)
    a.import_bundle(PROJECT, two.path)
    assert {"b_one", "b_two"} <= {b["bundleId"] for b in a.list_imported_bundles(PROJECT)}
    a.preload_bundle(PROJECT, "b_two")

    with pytest.raises(DSSBadRequest) as info:
        a.activate_bundle(PROJECT, "b_two")  # warehouse is not declared on this node
    assert info.value.code == "ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION"
    assert info.value.exit_code == ExitCode.DEPLOY_FAILED
    assert "activate bundle b_two of project CLIENTIT" in str(info.value)

    a.activate_bundle(PROJECT, "b_two", connection_remappings={"warehouse": "warehouse_test"})
    assert a.active_bundle_id(PROJECT) == "b_two"
    d.delete_exported_bundle(PROJECT, "b_one")
    assert "b_one" not in {b["bundleId"] for b in d.list_exported_bundles(PROJECT)}


def test_get_retried_through_injected_503(design: SimNode) -> None:
    design.set_faults(
        {"seed": 1, "rules": [{"method": "GET", "path": "/projects/$", "status": 503, "times": 2}]}
    )
    design.reset_stats()
    assert PROJECT in [p["projectKey"] for p in client(design).list_projects()]
    assert design.stats()["routes"]["GET /projects/"] == 3


def test_download_cut_off_is_retried_from_scratch(design: SimNode, tmp_path: Path) -> None:
    d = client(design)
    d.export_bundle(PROJECT, "b_cut")
    design.set_faults(
        {"seed": 1, "rules": [{"method": "GET", "path": "/archive$", "drop_after": 300, "times": 1}]}
    )
    design.reset_stats()
    tr = d.download_bundle(PROJECT, "b_cut", tmp_path / "b_cut.zip")
    assert tr.sha256 == hashlib.sha256((tmp_path / "b_cut.zip").read_bytes()).hexdigest()
    archive_gets = [
        n for r, n in design.stats()["routes"].items() if r.startswith("GET") and r.endswith("/archive")
    ]
    assert archive_gets == [2]


def test_activation_answer_lost_is_not_repeated(design: SimNode, automation: SimNode, tmp_path: Path) -> None:
    d, a = client(design), client(automation)
    d.export_bundle(PROJECT, "b_lost")
    tr = d.download_bundle(PROJECT, "b_lost", tmp_path / "b_lost.zip")
    if not a.project_exists(PROJECT):
        a.create_project_from_bundle(tr.path)
    else:
        a.import_bundle(PROJECT, tr.path)
    # the node answers after 1.5 s but our read timeout is 0.5 s: the answer is lost, the activation happens
    automation.set_faults(
        {"seed": 1, "rules": [{"method": "POST", "path": "/activate$", "latency": 1.5, "times": 1}]}
    )
    automation.reset_stats()
    slow = client(
        automation, read_timeout=0.5, retry=RetryPolicy(max_attempts=3, initial_s=8.0, max_wait_s=8.0)
    )
    report = slow.activate_bundle(PROJECT, "b_lost", connection_remappings={"warehouse": "warehouse_test"})
    assert report.get("recovered") is True
    assert a.active_bundle_id(PROJECT) == "b_lost"
    routes = automation.stats()["routes"]
    assert sum(n for r, n in routes.items() if r.startswith("POST") and r.endswith("/activate")) == 1


def test_waiter_results_and_request_budget(design: SimNode) -> None:
    node = client(design)
    waiter = ScenarioWaiter(node, PROJECT, tick=0.5)
    design.reset_stats()
    handles = waiter.start_all(["TEST_OK", "TEST_FAIL", "TEST_PAUSE"], deadline_s=60)
    began = time.monotonic()
    ok, fail, pause = waiter.wait(handles)
    elapsed = time.monotonic() - began
    assert ok.outcome == "SUCCESS" and ok.run_id and [s.step_id for s in ok.steps] == ["check"]
    assert pause.outcome == "SUCCESS" and (pause.duration_s or 0) >= 2.0
    assert fail.outcome == "FAILED" and fail.failing_step_id == "quality"
    assert "accuracy 0.61 below 0.8" in (fail.error_message or "")
    assert "scoring batch 59" in fail.log_excerpt and len(fail.log_excerpt.splitlines()) <= 40
    routes = design.stats()["routes"]
    lists = sum(
        n
        for r, n in routes.items()
        if r.startswith("GET ") and r.endswith("/scenarios/") and r.count("<") == 1
    )
    lookups = sum(n for r, n in routes.items() if r.endswith("get-run-for-trigger"))
    details = sum(
        n for r, n in routes.items() if r.startswith("GET ") and r.endswith(">/") and r.count("<") == 3
    )
    # one list per tick (plus one before triggering), whatever the number of scenarios
    assert 2 <= lists <= elapsed / 0.5 + 3
    # run lookups only while a run is not visible yet or once it stopped; details once per run
    assert lookups <= 3 * (2 + 2)
    assert details == 3


def test_deadline_aborts_the_run(design: SimNode) -> None:
    node = client(design)
    waiter = ScenarioWaiter(node, PROJECT, tick=0.3)
    (slow,) = waiter.wait([waiter.start("TEST_SLOW", deadline_s=1.0)])
    assert slow.outcome == "TIMEOUT" and slow.timed_out and slow.run_id
    assert "1s" in (slow.error_message or "")
    for _ in range(50):  # the abort is asynchronous on the node
        run = node.get_run(PROJECT, "TEST_SLOW", slow.run_id)["scenarioRun"]
        if run.get("result"):
            break
        node.sleep(0.1)
    assert run.get("result", {}).get("outcome") == "ABORTED"


def test_already_running_scenario_is_not_triggered_twice(design: SimNode) -> None:
    node = client(design)
    waiter = ScenarioWaiter(node, PROJECT, tick=0.3)
    handle = waiter.start("TEST_SLOW", deadline_s=30)
    try:
        for _ in range(50):
            if any(s["id"] == "TEST_SLOW" and s.get("running") for s in node.list_scenarios(PROJECT)):
                break
            node.sleep(0.1)
        with pytest.raises(DSSRunCancelled, match="already running"):
            waiter.start("TEST_SLOW", deadline_s=30)
    finally:
        node.abort_scenario(PROJECT, "TEST_SLOW")
    (result,) = waiter.wait([handle])
    assert result.outcome == "ABORTED"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls_verify_default_ca_bundle_and_opt_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cert, key = _self_signed(tmp_path)
    with SimNode.start(
        role="design", data_dir=tmp_path / "tls", api_key=KEY, tls_cert=cert, tls_key=key
    ) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        with pytest.raises(DSSUnreachable, match="TLS verification failed") as info:
            client(sim).instance_info()
        assert info.value.exit_code == ExitCode.NODE_UNREACHABLE
        assert client(sim, verify=str(cert)).instance_info().get("nodeType") == "DESIGN"
        with caplog.at_level(logging.WARNING, logger="mlcd.dss"):
            insecure = client(sim, verify=False)
        assert insecure.instance_info().get("nodeType") == "DESIGN"
        assert "verification is OFF" in caplog.text


def test_transfer_memory_does_not_grow_with_bundle_size(
    design: SimNode, automation: SimNode, tmp_path: Path
) -> None:
    big = design.data_dir / "projects" / "BIGP"
    (big / "data").mkdir(parents=True)
    (big / "project.json").write_text(json.dumps({"projectKey": "BIGP", "name": "big", "connections": []}))
    (big / "variables.json").write_text(json.dumps({"standard": {}, "local": {}}))
    with open(big / "data" / "blob.bin", "wb") as f:
        for _ in range(24):
            f.write(os.urandom(1024 * 1024))  # incompressible, so the archive is about 24 MiB
    d, a = client(design), client(automation)
    d.export_bundle("BIGP", "big1")
    tracemalloc.start()
    try:
        tr = d.download_bundle("BIGP", "big1", tmp_path / "big1.zip")
        _, peak_download = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        a.create_project_from_bundle(tr.path)
        _, peak_upload = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tr.size > 24 * 1024 * 1024
    assert a.project_exists("BIGP")
    assert peak_download < 8 * 1024 * 1024, peak_download
    assert peak_upload < 8 * 1024 * 1024, peak_upload
