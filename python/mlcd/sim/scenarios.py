"""Scenario runs, asynchronous as in DSS: trigger fire → run → steps in a background thread.

``python`` steps run a project script in a subprocess, ``wait`` steps sleep; both stop on abort.
Runs, fires, step results and logs are files under ``state/runs/<KEY>/<SCENARIO>/`` (they survive
a restart; runs in flight at start-up are marked ABORTED).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from mlcd.sim.errors import SimError, not_found
from mlcd.sim.procs import PID_FILE, kill_orphaned_scripts, script_env
from mlcd.sim.savedmodels import other_step
from mlcd.sim.scenario_steps import (
    ABORT_CLASS,
    STEP_ERROR_CLASS,
    run_record,
    script_outcome,
    step_info,
    step_result,
)
from mlcd.sim.store import Store, check_id, now_ms, read_json, write_json

OUTCOME_RANK = {"SUCCESS": 0, "WARNING": 1, "FAILED": 2, "ABORTED": 3}
MANUAL_TRIGGER = {"id": "manual", "type": "manual", "name": "Manual trigger", "active": True}
_counter = itertools.count(1)


@dataclass
class _Active:
    key: str
    sid: str
    fire: dict[str, Any]
    abort: threading.Event = field(default_factory=threading.Event)
    run_id: str | None = None
    start: int = 0
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None


def _run_id_now() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%d-%H-%M-%S-") + f"{now.microsecond // 1000:03d}"


def worst(outcomes: list[str]) -> str:
    """The most severe outcome of a list (SUCCESS if empty)."""
    return max(outcomes, key=lambda o: OUTCOME_RANK.get(o, 2), default="SUCCESS")


class ScenarioRunner:
    """Runs the scenarios of one node."""

    def __init__(self, store: Store, start_delay: float = 0.3) -> None:
        self.store = store
        self.start_delay = start_delay
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], _Active] = {}
        self._stopping = False
        self._recover()

    # -- paths ---------------------------------------------------------------------------------

    def _scenario_dir(self, key: str, sid: str) -> Path:
        return (
            self.store.state_dir / "runs" / check_id(key, "project key") / check_id(sid, "scenario id")
        )

    def _run_dir(self, key: str, sid: str, run_id: str) -> Path:
        return self._scenario_dir(key, sid) / check_id(run_id, "run id")

    def _trigger_path(self, key: str, sid: str, trigger_run_id: str) -> Path:
        return (
            self._scenario_dir(key, sid)
            / "triggers"
            / f"{check_id(trigger_run_id, 'trigger run id')}.json"
        )

    # -- start-up / shut-down ------------------------------------------------------------------

    def _recover(self) -> None:
        """Mark runs and trigger fires left in flight by a previous process as ABORTED / cancelled."""
        kill_orphaned_scripts(self.store.state_dir)
        base = self.store.state_dir / "runs"
        if not base.is_dir():
            return
        for run_file in base.glob("*/*/*/run.json"):
            try:
                run = read_json(run_file)
            except SimError:
                continue
            if run and "result" not in run:
                end = now_ms()
                run["end"] = end
                run["result"] = {
                    "outcome": "ABORTED",
                    "type": "SCENARIO_DONE",
                    "start": run.get("start", end),
                    "end": end,
                    "thrown": {
                        "clazz": ABORT_CLASS,
                        "title": "Aborted",
                        "message": "Node restarted during run",
                    },
                }
                write_json(run_file, run)
        for trig_file in base.glob("*/*/triggers/*.json"):
            try:
                trig = read_json(trig_file)
            except SimError:
                continue
            if trig and not trig.get("scenarioRunId") and not trig["fire"].get("cancelled"):
                trig["fire"]["cancelled"] = True
                write_json(trig_file, trig)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Abort every run in flight and wait for their threads (called on SIGTERM)."""
        with self._lock:
            self._stopping = True
            actives = list(self._active.values())
        for active in actives:
            active.abort.set()
            self._kill(active)
        for active in actives:
            if active.thread is not None:
                active.thread.join(timeout)

    # -- queries -------------------------------------------------------------------------------

    def running_start(self, key: str, sid: str) -> int | None:
        """Start (epoch ms) of the scenario's current run, 0 while pending, None when idle."""
        with self._lock:
            active = self._active.get((key, sid))
            return None if active is None else active.start

    def list_item(self, key: str, definition: dict[str, Any]) -> dict[str, Any]:
        """A scenario as GET /projects/{key}/scenarios/ lists it."""
        sid = definition["id"]
        start = self.running_start(key, sid)
        return {
            "id": sid,
            "name": definition.get("name", sid),
            "projectKey": key,
            "type": "step_based",
            "active": self.store.scenario_active(key, sid, definition),
            "running": start is not None,
            "start": start or 0,
            "markedAsTest": bool(definition.get("markedAsTest", False)),
            "description": definition.get("description", ""),
            "tags": list(definition.get("tags") or []),
            "nextRun": 0,
        }

    def trigger_fire(self, key: str, sid: str, trigger_id: str, trigger_run_id: str) -> dict[str, Any]:
        """The state of a trigger fire; 404 if unknown."""
        trig = read_json(self._trigger_path(key, sid, trigger_run_id))
        if not trig or trig["fire"]["trigger"]["id"] != trigger_id:
            raise not_found(f"Trigger fire '{trigger_id}/{trigger_run_id}' of scenario '{key}.{sid}'")
        fire: dict[str, Any] = trig["fire"]
        return fire

    def run_for_trigger(
        self, key: str, sid: str, trigger_id: str, trigger_run_id: str
    ) -> dict[str, Any]:
        """``{"scenarioRun": ...}`` once the trigger's run exists, ``{}`` before (or if cancelled)."""
        trig = read_json(self._trigger_path(key, sid, trigger_run_id))
        if not trig or trig["fire"]["trigger"]["id"] != trigger_id:
            raise not_found(f"Trigger fire '{trigger_id}/{trigger_run_id}' of scenario '{key}.{sid}'")
        run_id = trig.get("scenarioRunId")
        if not run_id:
            return {}
        return {"scenarioRun": self.get_run(key, sid, str(run_id))}

    def get_run(self, key: str, sid: str, run_id: str) -> dict[str, Any]:
        """One scenarioRun; 404 if unknown."""
        run = read_json(self._run_dir(key, sid, run_id) / "run.json")
        if not run:
            raise not_found(
                f"Run '{run_id}' of scenario '{key}.{sid}'", code="ERR_SCENARIO_RUN_NOT_FOUND"
            )
        return dict(run)

    def run_details(self, key: str, sid: str, run_id: str) -> dict[str, Any]:
        """``{"scenarioRun": ..., "stepRuns": [...]}``."""
        run = self.get_run(key, sid, run_id)
        steps = read_json(self._run_dir(key, sid, run_id) / "steps.json", []) or []
        return {"scenarioRun": run, "stepRuns": steps}

    def last_runs(self, key: str, sid: str, limit: int, only_finished: bool) -> list[dict[str, Any]]:
        """The scenario's runs, newest first."""
        base = self._scenario_dir(key, sid)
        runs: list[dict[str, Any]] = []
        if base.is_dir():
            for run_file in base.glob("*/run.json"):
                run = read_json(run_file)
                if run and (not only_finished or "result" in run):
                    runs.append(run)
        runs.sort(key=lambda r: (r.get("start", 0), r.get("runId", "")), reverse=True)
        return runs[: max(limit, 0)]

    def run_log(self, key: str, sid: str, run_id: str, step_id: str | None) -> str:
        """The run's log (or one step's): step headers, then each script's stdout and stderr."""
        details = self.run_details(key, sid, run_id)
        run_dir = self._run_dir(key, sid, run_id)
        run = details["scenarioRun"]
        lines: list[str] = []
        if step_id is None:
            lines.append(
                f"[{run.get('start')}] Scenario {key}.{sid} run {run_id} started by manual trigger"
            )
        for index, step in enumerate(details["stepRuns"]):
            info = step.get("step", {})
            if step_id is not None and info.get("id") != step_id:
                continue
            lines.append(f"[{step.get('start')}] Step '{info.get('id')}' ({info.get('type')}) started")
            step_dir = run_dir / "steps" / f"{index:03d}"
            for stream in ("stdout", "stderr"):
                path = step_dir / f"{stream}.txt"
                if path.is_file():
                    text = path.read_text(encoding="utf-8", errors="replace")
                    lines.extend(f"[{stream}] {line}" for line in text.splitlines())
            result = step.get("result") or {}
            if result:
                message = (result.get("thrown") or {}).get("message")
                suffix = f": {message}" if message else ""
                lines.append(
                    f"[{result.get('end')}] Step '{info.get('id')}' done: {result['outcome']}{suffix}"
                )
        if step_id is None and "result" in run:
            lines.append(f"[{run.get('end')}] Scenario done: {run['result']['outcome']}")
        return "\n".join(lines) + "\n"

    def junit(self, key: str, sid: str, run_id: str) -> bytes:
        """JUnit XML of a finished run of a scenario marked as test."""
        details = self.run_details(key, sid, run_id)
        run = details["scenarioRun"]
        if not run.get("scenario", {}).get("markedAsTest"):
            raise SimError(
                400, f"Scenario '{key}.{sid}' is not marked as a test", code="ERR_SCENARIO_NOT_A_TEST"
            )
        if "result" not in run:
            raise SimError(400, f"Run '{run_id}' is not finished", code="ERR_SCENARIO_RUN_NOT_FINISHED")
        outcome = run["result"]["outcome"]
        seconds = f"{max(run.get('end', 0) - run.get('start', 0), 0) / 1000:.3f}"
        failed = outcome == "FAILED"
        errored = outcome == "ABORTED"
        suites = etree.Element("testsuites")
        suite = etree.SubElement(
            suites,
            "testsuite",
            name=key,
            tests="1",
            failures="1" if failed else "0",
            errors="1" if errored else "0",
            skipped="0",
            time=seconds,
        )
        case = etree.SubElement(suite, "testcase", classname=key, name=sid, time=seconds)
        message = ""
        clazz = ""
        for step in details["stepRuns"]:
            thrown = (step.get("result") or {}).get("thrown")
            if thrown and step["result"]["outcome"] in ("FAILED", "ABORTED"):
                message, clazz = str(thrown.get("message", "")), str(thrown.get("clazz", ""))
                break
        if failed or errored:
            node = etree.SubElement(
                case, "failure" if failed else "error", message=message or outcome, type=clazz
            )
            node.text = self.run_log(key, sid, run_id, None)[-4000:]
        elif outcome == "WARNING":
            etree.SubElement(case, "system-out").text = "Scenario finished with outcome WARNING"
        result: bytes = etree.tostring(suites, xml_declaration=True, encoding="UTF-8", pretty_print=True)
        return result

    # -- actions -------------------------------------------------------------------------------

    def fire(
        self, key: str, sid: str, definition: dict[str, Any], params: dict[str, Any], trigger: Any = None
    ) -> dict[str, Any]:
        """Fire ``trigger`` (the manual one by default); cancelled at once if the scenario is running."""
        trigger_run_id = f"{now_ms()}-{next(_counter)}"
        fire: dict[str, Any] = {
            "trigger": dict(trigger or MANUAL_TRIGGER),
            "runId": trigger_run_id,
            "cancelled": False,
            "timestamp": now_ms(),
            "params": params,
            "projectKey": key,
            "scenarioId": sid,
        }
        with self._lock:
            if self._stopping:
                raise SimError(503, "Node is shutting down", code="ERR_NODE_STOPPING")
            if (key, sid) in self._active:
                fire["cancelled"] = True
                write_json(
                    self._trigger_path(key, sid, trigger_run_id), {"fire": fire, "scenarioRunId": None}
                )
                return fire
            write_json(
                self._trigger_path(key, sid, trigger_run_id), {"fire": fire, "scenarioRunId": None}
            )
            active = _Active(key, sid, fire)
            self._active[(key, sid)] = active
            thread = threading.Thread(
                target=self._execute,
                args=(active, definition),
                name=f"scenario-{key}-{sid}",
                daemon=True,
            )
            active.thread = thread
        thread.start()
        return fire

    def abort(self, key: str, sid: str) -> dict[str, Any]:
        """Abort the scenario's current run (nothing if idle)."""
        with self._lock:
            active = self._active.get((key, sid))
        if active is None:
            return {"aborted": False}
        active.abort.set()
        self._kill(active)
        return {"aborted": True, "runId": active.run_id}

    @staticmethod
    def _kill(active: _Active) -> None:
        proc = active.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    # -- execution -----------------------------------------------------------------------------

    def _execute(self, active: _Active, definition: dict[str, Any]) -> None:
        key, sid = active.key, active.sid
        trig_path = self._trigger_path(key, sid, active.fire["runId"])
        try:
            if active.abort.wait(self.start_delay):
                active.fire["cancelled"] = True
                write_json(trig_path, {"fire": active.fire, "scenarioRunId": None})
                return
            self._run(active, definition, trig_path)
        except Exception as exc:  # never leave a run without a result
            self._finish_broken(active, exc)
        finally:
            with self._lock:
                self._active.pop((key, sid), None)

    def _run(self, active: _Active, definition: dict[str, Any], trig_path: Path) -> None:
        key, sid = active.key, active.sid
        run_id = _run_id_now()
        while self._run_dir(key, sid, run_id).exists():
            run_id = f"{_run_id_now()}-{next(_counter)}"
        run_dir = self._run_dir(key, sid, run_id)
        start = now_ms()
        run = run_record(key, sid, definition, active.fire, run_id, start)
        write_json(run_dir / "run.json", run)
        active.run_id = run_id
        active.start = start
        write_json(trig_path, {"fire": active.fire, "scenarioRunId": run_id})
        step_runs: list[dict[str, Any]] = []
        outcomes: list[str] = []
        try:
            content = self._prepare_run(key, run_dir)
        except SimError as exc:
            content = run_dir
            outcomes.append("FAILED")
            step_runs.append(self._failed_setup(exc.message))
        steps = [] if outcomes else list(definition.get("steps") or [])
        for index, step in enumerate(steps):
            outcome = self._step(active, index, step, content, run_dir, step_runs)
            outcomes.append(outcome)
            if outcome in ("FAILED", "ABORTED"):
                break
        if active.abort.is_set() and "ABORTED" not in outcomes:
            outcomes.append("ABORTED")
        write_json(run_dir / "steps.json", step_runs)
        end = now_ms()
        run["end"] = end
        run["result"] = {"outcome": worst(outcomes), "type": "SCENARIO_DONE", "start": start, "end": end}
        write_json(run_dir / "run.json", run)

    def _prepare_run(self, key: str, run_dir: Path) -> Path:
        """The project's content dir; writes the run's variables and connections (SimError if not)."""
        content = self.store.project_content_dir(key)
        variables = self.store.get_variables(key)
        merged = {**variables["standard"], **variables["local"]}
        write_json(run_dir / "variables.json", merged)
        write_json(run_dir / "connections.json", self.store.connections())
        return content

    def _step(
        self,
        active: _Active,
        index: int,
        step: dict[str, Any],
        content: Path,
        run_dir: Path,
        step_runs: list[dict[str, Any]],
    ) -> str:
        """Run step ``index``, recording it in ``steps.json`` as it starts and ends; its outcome."""
        info = step_info(step, index)
        step_start = now_ms()
        step_run: dict[str, Any] = {"step": info, "start": step_start, "end": 0, "runId": active.run_id}
        step_runs.append(step_run)
        write_json(run_dir / "steps.json", step_runs)
        step_dir = run_dir / "steps" / f"{index:03d}"
        step_dir.mkdir(parents=True, exist_ok=True)
        if active.abort.is_set():
            outcome, message = "ABORTED", "Scenario aborted"
        else:
            outcome, message = self._run_step(active, step, info, content, run_dir, step_dir)
        end = now_ms()
        step_run["end"] = end
        step_run["result"] = step_result(outcome, message, step_start, end)
        step_run["additionalReportItems"] = []
        write_json(run_dir / "steps.json", step_runs)
        return outcome

    def _finish_broken(self, active: _Active, exc: Exception) -> None:
        message = exc.message if isinstance(exc, SimError) else f"Stand-in error: {type(exc).__name__}"
        print(f"mlcd sim: scenario {active.key}.{active.sid} failed: {message}", file=sys.stderr, flush=True)
        if active.run_id is None:
            active.fire["cancelled"] = True
            write_json(
                self._trigger_path(active.key, active.sid, active.fire["runId"]),
                {"fire": active.fire, "scenarioRunId": None},
            )
            return
        run_dir = self._run_dir(active.key, active.sid, active.run_id)
        run = read_json(run_dir / "run.json", {}) or {}
        if run and "result" not in run:
            end = now_ms()
            run["end"] = end
            run["result"] = {
                "outcome": "FAILED",
                "type": "SCENARIO_DONE",
                "start": run.get("start", end),
                "end": end,
                "thrown": {"clazz": STEP_ERROR_CLASS, "title": "Run failed", "message": message},
            }
            write_json(run_dir / "run.json", run)

    @staticmethod
    def _failed_setup(message: str) -> dict[str, Any]:
        now = now_ms()
        return {
            "step": {"id": "setup", "name": "Prepare run", "type": "setup"},
            "start": now,
            "end": now,
            "result": {
                "outcome": "FAILED",
                "type": "STEP_DONE",
                "start": now,
                "end": now,
                "thrown": {"clazz": STEP_ERROR_CLASS, "title": "Step failed", "message": message},
            },
            "additionalReportItems": [],
        }

    def _run_step(
        self,
        active: _Active,
        step: dict[str, Any],
        info: dict[str, str],
        content: Path,
        run_dir: Path,
        step_dir: Path,
    ) -> tuple[str, str]:
        kind = info["type"]
        if kind == "wait":
            try:
                seconds = float(step.get("seconds", 1.0))
            except (TypeError, ValueError):
                return "FAILED", f"Step '{info['id']}': 'seconds' must be a number"
            if active.abort.wait(max(seconds, 0.0)):
                return "ABORTED", "Scenario aborted"
            return "SUCCESS", ""
        if kind == "python":
            return self._run_python(active, step, info, content, run_dir, step_dir)
        return other_step(self.store, active.key, step, info)

    def _run_python(
        self,
        active: _Active,
        step: dict[str, Any],
        info: dict[str, str],
        content: Path,
        run_dir: Path,
        step_dir: Path,
    ) -> tuple[str, str]:
        script_rel = str(step.get("script") or "")
        script = (content / script_rel).resolve()
        if not script_rel or not script.is_file() or not script.is_relative_to(content.resolve()):
            return "FAILED", f"Step '{info['id']}': script '{script_rel}' not found in the project"
        result_path = step_dir / "result.json"
        env = script_env({
            "MLCD_PROJECT_KEY": active.key, "MLCD_SCENARIO_ID": active.sid, "MLCD_STEP_ID": info["id"],
            "MLCD_RUN_ID": str(active.run_id), "MLCD_NODE_NAME": self.store.node_name,
            "MLCD_VARIABLES": str(run_dir / "variables.json"),
            "MLCD_CONNECTIONS": str(run_dir / "connections.json"),
            "MLCD_STEP_RESULT": str(result_path), "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        with (step_dir / "stdout.txt").open("wb") as out, (step_dir / "stderr.txt").open("wb") as err:
            with self._lock:
                if active.abort.is_set():
                    return "ABORTED", "Scenario aborted"
                proc = subprocess.Popen(
                    [sys.executable, str(script)],
                    cwd=content,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
                active.proc = proc
                pid_file = step_dir / PID_FILE
                write_json(pid_file, {"pid": proc.pid, "script": str(script)})
            while proc.poll() is None:
                if active.abort.wait(0.05):
                    self._kill(active)
                    break
            rc = proc.wait()
            active.proc = None
            pid_file.unlink(missing_ok=True)
        if active.abort.is_set():
            return "ABORTED", "Scenario aborted"
        return script_outcome(rc, result_path, step_dir / "stderr.txt", info["id"])


def parse_params(raw: bytes) -> dict[str, Any]:
    """The JSON body of a run request (trigger params), ``{}`` when empty."""
    if not raw.strip():
        return {}
    try:
        params = json.loads(raw)
    except ValueError:
        raise SimError(400, "Run parameters must be a JSON object", code="ERR_INVALID_PARAMS") from None
    if not isinstance(params, dict):
        raise SimError(400, "Run parameters must be a JSON object", code="ERR_INVALID_PARAMS")
    return params
