"""Scenario runs on the stand-in: asynchronous as in DSS, with step results, logs, JUnit and abort."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from lxml import etree

from mlcd.sim.launcher import SimNode
from support.simclient import Api

KEY = "SIMPRJ"


def _wait_running(api: Api, sid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = api.json("GET", f"/projects/{KEY}/scenarios/{sid}/get-last-runs", params={"limit": 1})
        if runs and "result" not in runs[0]:
            return dict(runs[0])
        time.sleep(0.05)
    raise AssertionError(f"{sid} did not start")


def test_list_and_light_status(sim_design: SimNode) -> None:
    api = Api(sim_design)
    items = {s["id"]: s for s in api.json("GET", f"/projects/{KEY}/scenarios/")}
    assert set(items) == {"TEST_OK", "TEST_FAIL", "TEST_WARN", "SLOW", "SLEEPY_SCRIPT"}
    assert items["TEST_OK"]["markedAsTest"] is True and items["SLOW"]["markedAsTest"] is False
    assert items["SLOW"]["active"] is True and items["TEST_OK"]["active"] is False
    assert all(s["projectKey"] == KEY and s["running"] is False for s in items.values())
    light = api.json("GET", f"/projects/{KEY}/scenarios/TEST_OK/light")
    assert light["running"] is False


def test_successful_run(sim_design: SimNode) -> None:
    api = Api(sim_design)
    fire = api.run(KEY, "TEST_OK")
    assert fire["cancelled"] is False and fire["trigger"]["id"] and fire["runId"]
    run = api.wait_run(KEY, "TEST_OK", fire)
    assert run["result"]["outcome"] == "SUCCESS"
    assert run["result"]["type"] == "SCENARIO_DONE"
    assert run["scenario"] == {**run["scenario"], "projectKey": KEY, "id": "TEST_OK", "markedAsTest": True}
    assert run["end"] >= run["start"] > 0
    details = api.details(KEY, "TEST_OK", run["runId"])
    assert details["scenarioRun"]["runId"] == run["runId"]
    assert [s["result"]["outcome"] for s in details["stepRuns"]] == ["SUCCESS"]
    log = api.call("GET", f"/projects/{KEY}/scenarios/TEST_OK/{run['runId']}/log").text
    assert "project SIMPRJ scenario TEST_OK" in log
    assert "threshold 0.7" in log  # standard overlaid by local variables
    assert "connections ['warehouse']" in log
    assert "api key visible: False" in log
    assert sim_design.api_key not in log
    last = api.json("GET", f"/projects/{KEY}/scenarios/TEST_OK/get-last-runs", params={"limit": 5})
    assert [r["runId"] for r in last] == [run["runId"]]
    report = etree.fromstring(
        api.call("GET", f"/projects/{KEY}/scenarios/TEST_OK/{run['runId']}/scenario-run-report").content
    )
    case = report.find(".//testcase")
    assert case is not None and case.get("name") == "TEST_OK" and len(case) == 0


def test_failed_step_stops_the_run_with_its_error(sim_design: SimNode) -> None:
    api = Api(sim_design)
    run = api.wait_run(KEY, "TEST_FAIL", api.run(KEY, "TEST_FAIL"))
    assert run["result"]["outcome"] == "FAILED"
    steps = api.details(KEY, "TEST_FAIL", run["runId"])["stepRuns"]
    assert [s["step"]["id"] for s in steps] == ["first", "boom"]
    assert [s["result"]["outcome"] for s in steps] == ["SUCCESS", "FAILED"]
    thrown = steps[1]["result"]["thrown"]
    assert thrown["message"] == "ValueError: model AUC 0.51 below 0.7"
    assert thrown["clazz"] and thrown["title"]
    step_log = api.call(
        "GET", f"/projects/{KEY}/scenarios/TEST_FAIL/{run['runId']}/log", params={"stepId": "boom"}
    ).text
    assert "about to fail" in step_log and "project SIMPRJ" not in step_log
    report = etree.fromstring(
        api.call("GET", f"/projects/{KEY}/scenarios/TEST_FAIL/{run['runId']}/scenario-run-report").content
    )
    failure = report.find(".//testcase/failure")
    assert failure is not None and "AUC 0.51" in str(failure.get("message"))


def test_warning_outcome_written_by_script(sim_design: SimNode) -> None:
    api = Api(sim_design)
    run = api.wait_run(KEY, "TEST_WARN", api.run(KEY, "TEST_WARN"))
    assert run["result"]["outcome"] == "WARNING"
    [step] = api.details(KEY, "TEST_WARN", run["runId"])["stepRuns"]
    assert step["result"]["outcome"] == "WARNING"
    assert step["result"]["thrown"]["message"] == "drift close to limit"


def test_running_scenario_cancels_new_trigger_and_abort(sim_design: SimNode) -> None:
    api = Api(sim_design)
    first = api.run(KEY, "SLOW")
    second = api.run(KEY, "SLOW")
    assert first["cancelled"] is False
    assert second["cancelled"] is True
    run = api.wait_run(KEY, "SLOW", first, finished=False)
    assert "result" not in run and run["end"] == 0
    assert api.json("GET", f"/projects/{KEY}/scenarios/SLOW/light")["running"] is True
    state = api.json(
        "GET",
        f"/projects/{KEY}/scenarios/trigger/SLOW/{second['trigger']['id']}",
        params={"triggerRunId": second["runId"]},
    )
    assert state["cancelled"] is True
    params = {"triggerId": second["trigger"]["id"], "triggerRunId": second["runId"]}
    assert api.json("GET", f"/projects/{KEY}/scenarios/SLOW/get-run-for-trigger", params=params) == {}
    api.json("POST", f"/projects/{KEY}/scenarios/SLOW/abort")
    done = api.wait_run(KEY, "SLOW", first)
    assert done["result"]["outcome"] == "ABORTED"
    assert api.json("GET", f"/projects/{KEY}/scenarios/SLOW/light")["running"] is False


def test_concurrent_runs_and_abort_kills_script(sim_design: SimNode) -> None:
    api = Api(sim_design)
    fire_wait = api.run(KEY, "SLOW")
    fire_script = api.run(KEY, "SLEEPY_SCRIPT")
    ok = api.wait_run(KEY, "TEST_OK", api.run(KEY, "TEST_OK"))
    assert ok["result"]["outcome"] == "SUCCESS"
    running = {s["id"]: s["running"] for s in api.json("GET", f"/projects/{KEY}/scenarios/")}
    assert running["SLOW"] and running["SLEEPY_SCRIPT"] and not running["TEST_OK"]
    run = api.wait_run(KEY, "SLEEPY_SCRIPT", fire_script, finished=False)
    deadline = time.monotonic() + 30
    while (
        "sleeping" not in api.call("GET", f"/projects/{KEY}/scenarios/SLEEPY_SCRIPT/{run['runId']}/log").text
    ):
        assert time.monotonic() < deadline, "script never started"
        time.sleep(0.05)
    api.json("POST", f"/projects/{KEY}/scenarios/SLEEPY_SCRIPT/abort")
    assert api.wait_run(KEY, "SLEEPY_SCRIPT", fire_script)["result"]["outcome"] == "ABORTED"
    [step] = api.details(KEY, "SLEEPY_SCRIPT", run["runId"])["stepRuns"]
    assert step["result"]["outcome"] == "ABORTED"
    assert api.wait_run(KEY, "SLOW", fire_wait, finished=False)["end"] == 0  # the other one still runs
    api.json("POST", f"/projects/{KEY}/scenarios/SLOW/abort")
    assert api.wait_run(KEY, "SLOW", fire_wait)["result"]["outcome"] == "ABORTED"


def test_run_in_flight_at_restart_is_aborted(sim_design: SimNode) -> None:
    api = Api(sim_design)
    fire = api.run(KEY, "SLOW")
    run_id = api.wait_run(KEY, "SLOW", fire, finished=False)["runId"]
    sim_design.kill()
    sim_design.restart()
    api = Api(sim_design)
    run = api.details(KEY, "SLOW", run_id)["scenarioRun"]
    assert run["result"]["outcome"] == "ABORTED"
    assert run["end"] >= run["start"]
    assert api.json("GET", f"/projects/{KEY}/scenarios/SLOW/light")["running"] is False


def test_scenarios_run_on_the_active_bundle(
    sim_design: SimNode, sim_automation: SimNode, tmp_path: Path
) -> None:
    archive = Api(sim_design).export(KEY, "v1", tmp_path / "v1.zip")
    auto = Api(sim_automation)
    assert auto.json("GET", "/projects/") == []
    assert auto.upload("/projectsFromBundle/", archive).status_code == 200
    assert auto.json("GET", f"/projects/{KEY}/scenarios/") == []  # nothing active yet
    auto.json("POST", f"/projects/{KEY}/bundles/imported/v1/actions/activate", json={})
    auto.call(
        "PUT",
        f"/projects/{KEY}/variables/",
        json={"standard": {"threshold": 0.7}, "local": {"threshold": 0.9}},
    )
    run = auto.wait_run(KEY, "TEST_OK", auto.run(KEY, "TEST_OK"))
    assert run["result"]["outcome"] == "SUCCESS"
    log = auto.call("GET", f"/projects/{KEY}/scenarios/TEST_OK/{run['runId']}/log").text
    assert "node auto-test threshold 0.9" in log


def _script_pid(api: Api, node: SimNode) -> int:
    fire = api.run(KEY, "SLEEPY_SCRIPT")
    run = api.wait_run(KEY, "SLEEPY_SCRIPT", fire, finished=False)
    log_path = f"/projects/{KEY}/scenarios/SLEEPY_SCRIPT/{run['runId']}/log"
    deadline = time.monotonic() + 30
    while "sleeping" not in api.call("GET", log_path).text:
        assert time.monotonic() < deadline, "script never started"
        time.sleep(0.05)
    [pid_file] = node.data_dir.glob("state/runs/*/SLEEPY_SCRIPT/*/steps/*/script.pid")
    return int(json.loads(pid_file.read_text())["pid"])


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_node_crash_then_restart_kills_the_orphaned_script(sim_design: SimNode) -> None:
    pid = _script_pid(Api(sim_design), sim_design)
    assert _alive(pid)
    os.kill(int(sim_design.pid or 0), signal.SIGKILL)  # a crash: nothing cleans up
    deadline = time.monotonic() + 30
    while sim_design.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive(pid)
    sim_design.restart()
    assert not _alive(pid)
    api = Api(sim_design)
    [run] = api.json("GET", f"/projects/{KEY}/scenarios/SLEEPY_SCRIPT/get-last-runs")
    assert run["result"]["outcome"] == "ABORTED"


def test_launcher_kill_also_kills_running_scripts(sim_design: SimNode) -> None:
    pid = _script_pid(Api(sim_design), sim_design)
    sim_design.kill()
    assert not _alive(pid)


def test_bad_project_files_give_clear_errors_and_runs_always_end(sim_design: SimNode) -> None:
    project = sim_design.data_dir / "projects" / KEY
    (project / "scripts" / "badresult.py").write_text(
        "import os\nopen(os.environ['MLCD_STEP_RESULT'], 'w').write('{not json')\n"
    )
    (project / "scenarios" / "BAD_RESULT.json").write_text(
        json.dumps(
            {"id": "BAD_RESULT", "steps": [{"id": "s", "type": "python", "script": "scripts/badresult.py"}]}
        )
    )
    (project / "scenarios" / "BAD_STEPS.json").write_text(json.dumps({"id": "BAD_STEPS", "steps": "oops"}))
    (project / "scenarios" / "NO_SCRIPT.json").write_text(
        json.dumps({"id": "NO_SCRIPT", "steps": [{"id": "s", "type": "python", "script": "../../escape.py"}]})
    )
    api = Api(sim_design)
    for sid, message in [
        ("BAD_RESULT", "not valid JSON"),
        ("BAD_STEPS", "Stand-in error"),
        ("NO_SCRIPT", "not found"),
    ]:
        run = api.wait_run(KEY, sid, api.run(KEY, sid))
        assert run["result"]["outcome"] == "FAILED", sid
        steps = api.details(KEY, sid, run["runId"])["stepRuns"]
        thrown = run["result"].get("thrown") or steps[-1]["result"]["thrown"]
        assert message in thrown["message"], sid
    (project / "scenarios" / "BROKEN.json").write_text("{ this is not json")
    resp = api.call("GET", f"/projects/{KEY}/scenarios/")
    assert resp.status_code == 500
    assert resp.json()["code"] == "ERR_INVALID_DATA_FILE"
    assert "BROKEN.json" in resp.json()["message"]


def test_step_scripts_see_an_allow_listed_environment_only(
    tmp_path: Path, sim_api_key: str, monkeypatch: Any, sim_project_factory: Any
) -> None:
    """Issue 12 item 10: a script inherited the launcher's whole environment, other nodes' keys included."""
    write_sim_project = sim_project_factory
    monkeypatch.setenv("DSS_PROD_API_KEY", "prod-key-must-not-leak")
    monkeypatch.setenv("SOME_TOKEN", "token-must-not-leak")
    dump = "import os, json\nprint('ENV', json.dumps(sorted(os.environ)))\n"
    scenarios = {
        "DUMP": {"name": "Dump env", "steps": [{"id": "d", "type": "python", "script": "scripts/dump.py"}]}
    }
    write_sim_project(tmp_path / "d", scenarios=scenarios, files={"scripts/dump.py": dump})
    with SimNode.start("design", tmp_path / "d", api_key=sim_api_key) as node:
        api = Api(node)
        run = api.wait_run(KEY, "DUMP", api.run(KEY, "DUMP"))
        assert run["result"]["outcome"] == "SUCCESS"
        log = api.call("GET", f"/projects/{KEY}/scenarios/DUMP/{run['runId']}/log").text
    names = json.loads(log.split("ENV ", 1)[1].splitlines()[0])
    assert "PATH" in names and "MLCD_PROJECT_KEY" in names
    for leaked in ("DSS_PROD_API_KEY", "SOME_TOKEN", "MLCD_SIM_API_KEY"):
        assert leaked not in names
    assert "prod-key-must-not-leak" not in log and sim_api_key not in log
