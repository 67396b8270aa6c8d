"""The records of a scenario run and of its steps, as the DSS public API shows them.

Pure helpers of ``mlcd.sim.scenarios`` (no threads, no processes): the run's ``run.json`` head, a
step's identity and result, and the outcome of a ``python`` step from its exit code, the step result
it wrote and its stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcd.sim.errors import SimError
from mlcd.sim.store import read_json

STEP_ERROR_CLASS = "com.dataiku.dip.scenario.step.StepExecutionException"
ABORT_CLASS = "com.dataiku.dip.scenario.ScenarioAbortedException"
_SCRIPT_OUTCOMES = ("SUCCESS", "WARNING", "FAILED")


def run_record(
    key: str, sid: str, definition: dict[str, Any], fire: dict[str, Any], run_id: str, start: int
) -> dict[str, Any]:
    """A started run's ``run.json`` (no result yet)."""
    return {
        "runId": run_id,
        "start": start,
        "end": 0,
        "scenario": {
            "projectKey": key,
            "id": sid,
            "name": definition.get("name", sid),
            "markedAsTest": bool(definition.get("markedAsTest", False)),
            "type": "step_based",
        },
        "trigger": {
            "trigger": fire["trigger"],
            "triggerRunId": fire["runId"],
            "params": fire.get("params", {}),
        },
        "runAsUser": {"login": "admin", "realLogin": "admin"},
    }


def step_info(step: dict[str, Any], index: int) -> dict[str, str]:
    """A step's id, name and type (defaults from its position)."""
    return {
        "id": str(step.get("id") or f"step_{index}"),
        "name": str(step.get("name") or step.get("id") or f"Step {index}"),
        "type": str(step.get("type") or ""),
    }


def step_result(outcome: str, message: str, start: int, end: int) -> dict[str, Any]:
    """A finished step's result; anything but SUCCESS with a message carries it as ``thrown``."""
    result: dict[str, Any] = {"outcome": outcome, "type": "STEP_DONE", "start": start, "end": end}
    if outcome != "SUCCESS" and message:
        clazz = ABORT_CLASS if outcome == "ABORTED" else STEP_ERROR_CLASS
        title = {"ABORTED": "Aborted", "WARNING": "Step finished with a warning"}.get(outcome, "Step failed")
        result["thrown"] = {"clazz": clazz, "title": title, "message": message, "stack": "", "code": ""}
    return result


def script_outcome(rc: int, result_path: Path, stderr_path: Path, step_id: str) -> tuple[str, str]:
    """A finished ``python`` step's outcome and message: what it wrote to its step result, else its
    exit code and the last line of its stderr."""
    try:
        written = read_json(result_path, {}) if result_path.is_file() else {}
    except SimError:
        return "FAILED", f"Step '{step_id}' wrote a step result that is not valid JSON"
    if not isinstance(written, dict):
        written = {}
    message = str(written.get("message") or "")
    if rc == 0:
        outcome = str(written.get("outcome") or "SUCCESS").upper()
        if outcome not in _SCRIPT_OUTCOMES:
            return "FAILED", f"Step '{step_id}' wrote an unknown outcome '{outcome[:40]}'"
        return outcome, message
    if not message:
        lines = [ln for ln in stderr_path.read_text(errors="replace").splitlines() if ln.strip()]
        message = lines[-1].strip() if lines else f"Script exited with code {rc}"
    return "FAILED", message
