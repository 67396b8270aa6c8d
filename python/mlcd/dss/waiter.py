"""Run scenarios and wait for them: bounded, efficient, never blind.

:class:`ScenarioWaiter` triggers scenarios of one project and waits for all of
them with **one** GET ``/projects/{key}/scenarios/`` per tick (default 1 s),
whatever their number. Only for a scenario that stopped running (or whose run
has not appeared yet) does it ask ``get-run-for-trigger``; once a run is done
it reads the run's details (step results) once, plus the log tail on failure.
Every run has a deadline: on expiry the scenario is aborted and the result is
``TIMEOUT`` with the run id (or :class:`DSSTimeout` with ``raise_on_timeout``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlcd.dss.errors import DSSError, DSSNotFound, DSSRunCancelled, DSSTimeout
from mlcd.dss.node import DSSNode

log = logging.getLogger("mlcd.dss")

OUTCOMES = ("SUCCESS", "WARNING", "FAILED", "ABORTED", "TIMEOUT")
LOG_EXCERPT_LINES = 40


@dataclass(frozen=True)
class StepResult:
    """One step of a finished run."""

    step_id: str
    name: str
    outcome: str
    error_message: str | None = None
    error_type: str | None = None
    thrown_messages: tuple[str, ...] = ()  # ``additionalReportItems[].thrown`` (failing build jobs...)


@dataclass
class ScenarioResult:
    """The result of one scenario run. ``start``/``end`` are epoch milliseconds (None if unknown)."""

    scenario_id: str
    run_id: str | None
    outcome: str  # SUCCESS | WARNING | FAILED | ABORTED | TIMEOUT
    start: int | None = None
    end: int | None = None
    steps: list[StepResult] = field(default_factory=list)
    log_excerpt: str = ""
    timed_out: bool = False
    failing_step_id: str | None = None
    failing_step_name: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    #: messages of ``additionalReportItems[].thrown`` of the failing step (e.g. a failed build job);
    #: the first is also in ``error_message`` when the step itself carries none
    thrown_messages: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        """Run duration in seconds, when start and end are known."""
        if self.start and self.end and self.end >= self.start:
            return (self.end - self.start) / 1000.0
        return None


@dataclass
class RunHandle:
    """A scenario run mlcd triggered and is waiting for."""

    scenario_id: str
    deadline: float  # on the waiter's monotonic clock
    deadline_s: float
    trigger_id: str | None = None
    trigger_run_id: str | None = None
    run_id: str | None = None
    result: ScenarioResult | None = None


def _str(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


def _thrown(result: Any) -> tuple[str | None, str | None]:
    if not isinstance(result, dict):
        return None, None
    thrown = result.get("thrown")
    if isinstance(thrown, dict):
        msg = _str(thrown.get("message")) or _str(thrown.get("title"))
        return _str(thrown.get("clazz")), msg
    return None, _str(result.get("message"))


def _parse_steps(step_runs: Any) -> list[StepResult]:
    steps: list[StepResult] = []
    for i, sr in enumerate(step_runs if isinstance(step_runs, list) else []):
        if not isinstance(sr, dict):
            continue
        step: dict[str, Any] = sr["step"] if isinstance(sr.get("step"), dict) else {}
        step_id = _str(step.get("id")) or _str(sr.get("stepId")) or f"step_{i + 1}"
        name = _str(step.get("name")) or _str(sr.get("stepName")) or step_id
        result: dict[str, Any] = sr["result"] if isinstance(sr.get("result"), dict) else {}
        error_type, error_message, messages = _step_error(result, sr.get("additionalReportItems"))
        outcome = _str(result.get("outcome")) or "UNKNOWN"
        steps.append(StepResult(step_id, name, outcome, error_message, error_type, messages))
    return steps


def _step_error(result: dict[str, Any], items: Any) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(class, message, thrown messages) of a step: its own ``thrown``, completed by its report items'."""
    error_type, error_message = _thrown(result)
    thrown = _report_item_errors(items)
    if thrown and error_message is None:
        error_type, error_message = thrown[0]
    elif thrown and error_message is not None and thrown[0][1] not in error_message:
        error_message = f"{error_message}: {thrown[0][1]}"
    return error_type, error_message, tuple(m for _, m in thrown if m)


def _report_item_errors(items: Any) -> list[tuple[str | None, str]]:
    """(class, message) of each ``additionalReportItems[].thrown`` (DSS puts build-job errors there)."""
    out: list[tuple[str | None, str]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        error_type, message = _thrown(item)
        if isinstance(item.get("thrown"), dict) and message:
            out.append((error_type, message))
    return out


class ScenarioWaiter:
    """Trigger and wait for scenarios of one project on one node (see module docstring)."""

    def __init__(
        self, node: DSSNode, project_key: str, tick: float = 1.0, log_lines: int = LOG_EXCERPT_LINES
    ):
        self.node = node
        self.project_key = project_key
        self.tick = tick
        self.log_lines = log_lines

    # -- starting ----------------------------------------------------------------------------------
    def start(self, sid: str, deadline_s: float, params: dict[str, Any] | None = None) -> RunHandle:
        """Trigger ``sid`` unless it is already running (then :class:`DSSRunCancelled`); return its handle."""
        return self.start_all([sid], deadline_s, params)[0]

    def start_all(
        self, sids: Sequence[str], deadline_s: float, params: dict[str, Any] | None = None
    ) -> list[RunHandle]:
        """Trigger several scenarios after one list request; each gets ``deadline_s`` from its trigger."""
        key = self.project_key
        listed = {str(s.get("id")): s for s in self.node.list_scenarios(key)}
        for sid in sids:
            if sid not in listed:
                raise DSSNotFound(
                    404,
                    None,
                    None,
                    f"no scenario {sid} in project {key}",
                    self.node.name,
                    f"run scenario {sid}",
                    hint="check the scenario ids in mlcd.yaml",
                )
            if listed[sid].get("running"):
                raise DSSRunCancelled(
                    None,
                    None,
                    None,
                    f"scenario {sid} is already running; mlcd does not trigger it twice",
                    self.node.name,
                    f"run scenario {sid} of project {key}",
                )
        handles: list[RunHandle] = []
        try:
            for sid in sids:
                handles.append(self._trigger(sid, deadline_s, params))
        except BaseException:  # a DSS error, or SIGTERM / Ctrl-C between triggers
            self.abort(handles)  # leave no run behind that nobody waits for
            raise
        return handles

    def wait_until_idle(
        self, sids: Sequence[str], timeout_s: float, on_wait: Callable[[list[str]], None] | None = None
    ) -> None:
        """Wait (one list request per tick) until none of ``sids`` is running; DSSTimeout after ``timeout_s``.

        For runs mlcd did not start (a schedule, a person, an earlier killed job):
        they are let finish rather than cancelled or reported as this gate's.
        """
        clock, sleep = self.node.clock, self.node.sleep
        deadline = clock() + timeout_s
        told = False
        while True:
            listed = self.node.list_scenarios(self.project_key)
            busy = [str(s.get("id")) for s in listed if s.get("running") and str(s.get("id")) in sids]
            if not busy:
                return
            if not told and on_wait is not None:
                on_wait(busy)
                told = True
            if clock() >= deadline:
                raise DSSTimeout(
                    None,
                    None,
                    None,
                    f"scenario(s) {', '.join(busy)} already running (not started by this mlcd) "
                    f"did not finish within {timeout_s:g}s",
                    self.node.name,
                    f"wait for running scenarios of project {self.project_key}",
                    hint="look at the running scenario on the node, abort it if it hangs, then run again",
                )
            sleep(max(0.0, min(self.tick, deadline - clock())))

    def abort(self, handles: Iterable[RunHandle]) -> list[str]:
        """Abort the runs of ``handles`` that have no result yet; return their scenario ids.

        Used when the wait is given up (SIGTERM, Ctrl-C): runs this waiter started do not
        keep running unattended. Abort failures are logged, never raised.
        """
        aborted: list[str] = []
        for h in handles:
            if h.result is not None:
                continue
            try:
                self.node.abort_scenario(self.project_key, h.scenario_id)
                aborted.append(h.scenario_id)
            except DSSError as exc:
                log.warning("DSS %s: could not abort scenario %s: %s", self.node.name, h.scenario_id, exc)
        return aborted

    def _trigger(self, sid: str, deadline_s: float, params: dict[str, Any] | None) -> RunHandle:
        key = self.project_key
        fire = self.node.run_scenario(key, sid, params)
        op = f"run scenario {sid} of project {key}"
        if fire.get("cancelled"):
            raise DSSRunCancelled(
                None,
                None,
                None,
                "DSS cancelled the trigger (the scenario was probably already running)",
                self.node.name,
                op,
            )
        handle = RunHandle(scenario_id=sid, deadline=self.node.clock() + deadline_s, deadline_s=deadline_s)
        trigger = fire.get("trigger")
        if isinstance(trigger, dict):
            handle.trigger_id = _str(trigger.get("id"))
        handle.trigger_run_id = _str(fire.get("runId"))
        run = fire.get("scenarioRun")
        if isinstance(run, dict):
            handle.run_id = _str(run.get("runId"))
        if handle.run_id is None and (handle.trigger_id is None or handle.trigger_run_id is None):
            raise DSSError(
                None, None, None, "the trigger fire names no trigger id or run id", self.node.name, op
            )
        log.info("DSS %s: triggered scenario %s of %s", self.node.name, sid, key)
        return handle

    # -- waiting -----------------------------------------------------------------------------------
    def run(self, sid: str, deadline_s: float, params: dict[str, Any] | None = None) -> ScenarioResult:
        """Trigger one scenario and wait for it; raise :class:`DSSTimeout` if its deadline expires."""
        return self.wait([self.start(sid, deadline_s, params)], raise_on_timeout=True)[0]

    def wait(self, handles: Iterable[RunHandle], raise_on_timeout: bool = False) -> list[ScenarioResult]:
        """Wait for every handle; results in the same order. Timed-out runs are aborted (outcome TIMEOUT)."""
        handles = list(handles)
        clock, sleep = self.node.clock, self.node.sleep
        while True:
            pending = [h for h in handles if h.result is None]
            if not pending:
                break
            now = clock()
            self._poll(pending, now)
            remaining = [h.deadline for h in handles if h.result is None]
            if not remaining:
                break
            wake = min(now + self.tick, min(remaining))
            sleep(max(0.0, wake - clock()))
        results = [h.result for h in handles if h.result is not None]
        if raise_on_timeout:
            self._raise_first_timeout(results)
        return results

    def _poll(self, pending: list[RunHandle], now: float) -> None:
        """One tick: one scenario-list request, then a read only for runs the list says have stopped."""
        listed = self.node.list_scenarios(self.project_key)
        running = {str(s.get("id")): bool(s.get("running")) for s in listed}
        for h in pending:
            # while the list says the scenario runs there is nothing to learn: no request
            if not running.get(h.scenario_id, False):
                self._check(h, False)
            if h.result is None and now >= h.deadline:
                self._time_out(h)

    def _raise_first_timeout(self, results: list[ScenarioResult]) -> None:
        """Raise :class:`DSSTimeout` for the first result that timed out (it was aborted)."""
        for r in results:
            if r.timed_out:
                raise DSSTimeout(
                    None,
                    None,
                    None,
                    f"scenario {r.scenario_id} did not finish in time and was aborted",
                    self.node.name,
                    f"wait for scenario {r.scenario_id} of project {self.project_key}",
                    run_id=r.run_id,
                )

    def _find_run(self, h: RunHandle) -> dict[str, Any] | None:
        key = self.project_key
        if h.trigger_id is not None and h.trigger_run_id is not None:
            run = self.node.get_run_for_trigger(key, h.scenario_id, h.trigger_id, h.trigger_run_id)
        elif h.run_id is not None:
            run = self.node.get_run(key, h.scenario_id, h.run_id).get("scenarioRun")
        else:  # pragma: no cover - _trigger guarantees one of them
            return None
        if isinstance(run, dict) and run.get("runId"):
            h.run_id = str(run["runId"])
            return run
        return None

    def _check(self, h: RunHandle, running: bool) -> None:
        details: dict[str, Any] | None = None
        if h.run_id is not None:  # run known: one read gives its result and its steps
            details = self.node.get_run(self.project_key, h.scenario_id, h.run_id)
            found = details.get("scenarioRun")
            run = found if isinstance(found, dict) else None
        else:
            run = self._find_run(h)
        if run is not None and isinstance(run.get("result"), dict) and run["result"].get("outcome"):
            h.result = self._finish(h, run, details=details)
        elif run is None and not running and h.trigger_id is not None and h.trigger_run_id is not None:
            # no run and nothing running: the fire is queued, or was cancelled before its run began
            try:
                fire = self.node.get_trigger_fire(
                    self.project_key, h.scenario_id, h.trigger_id, h.trigger_run_id
                )
            except DSSNotFound:
                return
            if fire.get("cancelled"):
                h.result = ScenarioResult(
                    scenario_id=h.scenario_id,
                    run_id=None,
                    outcome="ABORTED",
                    error_type="cancelled",
                    error_message="DSS cancelled the trigger fire before its run started "
                    "(the scenario was aborted or already running); not retried",
                )

    def _finish(
        self,
        h: RunHandle,
        run: dict[str, Any],
        timed_out: bool = False,
        details: dict[str, Any] | None = None,
    ) -> ScenarioResult:
        key, sid = self.project_key, h.scenario_id
        run_id = h.run_id or _str(run.get("runId"))
        steps: list[StepResult] = []
        if run_id is not None:
            if details is None:
                details = self.node.get_run(key, sid, run_id)
            if isinstance(details.get("scenarioRun"), dict):
                run = details["scenarioRun"]
            steps = _parse_steps(details.get("stepRuns"))
        run_result: dict[str, Any] = run["result"] if isinstance(run.get("result"), dict) else {}
        outcome = "TIMEOUT" if timed_out else (_str(run_result.get("outcome")) or "FAILED")
        res = ScenarioResult(
            scenario_id=sid,
            run_id=run_id,
            outcome=outcome,
            start=_epoch(run, "start"),
            end=_epoch(run, "end"),
            steps=steps,
            timed_out=timed_out,
        )
        if outcome != "SUCCESS":
            _explain_failure(res, steps, run_result)
            if run_id is not None:
                res.log_excerpt = self._log_tail(sid, run_id)
        return res

    def _log_tail(self, sid: str, run_id: str) -> str:
        try:
            text = self.node.get_run_log(self.project_key, sid, run_id)
        except DSSNotFound:
            return ""  # DSS before 13.3 has no run log endpoint
        lines = text.splitlines()
        return "\n".join(lines[-self.log_lines :])

    def _time_out(self, h: RunHandle) -> None:
        key, sid = self.project_key, h.scenario_id
        run = self._find_run(h)  # last look: it may just have finished
        if run is not None and isinstance(run.get("result"), dict) and run["result"].get("outcome"):
            h.result = self._finish(h, run)
            return
        log.warning(
            "DSS %s: scenario %s of %s passed its %.0fs deadline; aborting run %s",
            self.node.name,
            sid,
            key,
            h.deadline_s,
            h.run_id or "(not started)",
        )
        abort_error: str | None = None
        try:
            self.node.abort_scenario(key, sid)
        except DSSError as exc:
            abort_error = exc.one_line()
        if h.run_id is not None:
            res = self._finish(h, run or {"runId": h.run_id}, timed_out=True)
        else:
            res = ScenarioResult(scenario_id=sid, run_id=None, outcome="TIMEOUT", timed_out=True)
        res.error_type = "timeout"
        res.error_message = f"did not finish within {h.deadline_s:g}s; aborted" + (
            f" (abort failed: {abort_error})" if abort_error else ""
        )
        h.result = res


def _epoch(run: dict[str, Any], key: str) -> int | None:
    """A run's ``start``/``end`` time in ms, or None when DSS has not set it (0 or absent)."""
    value = run.get(key)
    return int(value) if isinstance(value, int | float) and value else None


def _explain_failure(res: ScenarioResult, steps: list[StepResult], run_result: dict[str, Any]) -> None:
    """Name the failing step (a failed or aborted one first, else a warning) and its error on ``res``."""
    failing = next((s for s in steps if s.outcome in ("FAILED", "ABORTED")), None)
    failing = failing or next((s for s in steps if s.outcome == "WARNING"), None)
    if failing is not None:
        res.failing_step_id, res.failing_step_name = failing.step_id, failing.name
        res.error_type, res.error_message = failing.error_type, failing.error_message
        res.thrown_messages = list(failing.thrown_messages)
    if res.error_message is None:
        res.error_type, res.error_message = _thrown(run_result)
