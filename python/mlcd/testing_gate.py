"""Quality gates: run test or smoke scenarios, retry declared-flaky ones, decide pass/fail, report.

The decisions are plain functions of scenario results and the environment's
policy, so they are tested without a node:

* ``SUCCESS`` passes; ``WARNING`` passes only with ``warning: pass``;
  ``FAILED``, ``ABORTED`` and ``TIMEOUT`` never pass.
* Only scenarios listed in ``flaky`` are retried, at most their count; every
  attempt is kept and reported. A scenario passes when its last attempt passes,
  so a flaky scenario that fails on every attempt fails, and a non-flaky one
  gets exactly one attempt: a real failure never turns green.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlcd.dss.waiter import RunHandle, ScenarioResult, ScenarioWaiter
from mlcd.errors import MlcdError
from mlcd.reports import Attempt, CaseResult, write_html, write_junit

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig
    from mlcd.dss.node import DSSNode

RunBatch = Callable[[list[str]], list[ScenarioResult]]
OnResult = Callable[[ScenarioResult, int], None]


def passes(outcome: str, warning_policy: str) -> bool:
    """Whether one run outcome passes under the environment's WARNING policy (``fail`` | ``pass``)."""
    if outcome == "SUCCESS":
        return True
    if outcome == "WARNING":
        return warning_policy == "pass"
    return False


def should_retry(
    scenario_id: str, outcome: str, retries_used: int, flaky: Mapping[str, int], warning_policy: str
) -> bool:
    """Whether to run ``scenario_id`` again: only a declared-flaky one that did not pass, within its count."""
    if passes(outcome, warning_policy):
        return False
    return retries_used < int(flaky.get(scenario_id, 0))


def _outcome(result: ScenarioResult) -> str:
    return "TIMEOUT" if result.timed_out else result.outcome


def _failing_step(result: ScenarioResult) -> str | None:
    if result.failing_step_name or result.failing_step_id:
        return result.failing_step_name or result.failing_step_id
    for step in result.steps:
        if step.outcome not in ("SUCCESS", "UNKNOWN"):
            return step.name or step.step_id
    return None


def _error_message(result: ScenarioResult) -> str | None:
    if result.error_message:
        return result.error_message
    for step in result.steps:
        if step.error_message:
            return step.error_message
    if result.timed_out:
        return "the scenario did not finish before its deadline and was aborted"
    return None


def _case_message(last: ScenarioResult, outcome: str, passed: bool) -> str | None:
    """The error message of a case: none for a plain success; WARNING says how the policy counted it."""
    message = None if passed and outcome == "SUCCESS" else _error_message(last)
    if outcome == "WARNING" and not message:
        message = "the scenario ended with WARNING"
    if outcome == "WARNING" and not passed:
        message = f"{message} (WARNING counts as a failure: warning: fail in mlcd.yaml)"
    return message


def build_case(scenario_id: str, attempts: Sequence[ScenarioResult], warning_policy: str) -> CaseResult:
    """The reported case of one scenario from all its attempts (the last attempt decides)."""
    if not attempts:
        raise ValueError(f"no attempt of scenario {scenario_id}")
    last = attempts[-1]
    outcome = _outcome(last)
    passed = passes(outcome, warning_policy)
    error_type = last.error_type
    if error_type is None:
        error_type = next((s.error_type for s in last.steps if s.error_type), None)
    message = _case_message(last, outcome, passed)
    return CaseResult(
        scenario_id=scenario_id,
        outcome=outcome,
        passed=passed,
        duration_s=sum(a.duration_s or 0.0 for a in attempts),
        run_id=last.run_id,
        failing_step=None if passed else _failing_step(last),
        error_type=None if passed else error_type,
        error_message=message,
        log_excerpt="" if passed and outcome == "SUCCESS" else last.log_excerpt,
        attempts=[
            Attempt(
                run_id=a.run_id,
                outcome=_outcome(a),
                duration_s=a.duration_s or 0.0,
                failing_step=_failing_step(a),
                error_message=_error_message(a),
            )
            for a in attempts
        ],
        flaky_retries=len(attempts) - 1,
    )


def missing_case(scenario_id: str, node_name: str, project: str) -> CaseResult:
    """A failed case for a scenario the configuration names but the node does not have."""
    return CaseResult(
        scenario_id=scenario_id,
        outcome="FAILED",
        passed=False,
        duration_s=0.0,
        run_id=None,
        failing_step=None,
        error_type="ScenarioNotFound",
        error_message=f"scenario {scenario_id} does not exist in project {project} on node {node_name} "
        "(fix the scenario id in mlcd.yaml or add it to the project)",
        log_excerpt="",
        attempts=[],
    )


def run_gate(
    run_batch: RunBatch,
    scenario_ids: Sequence[str],
    flaky: Mapping[str, int],
    warning_policy: str,
    on_result: OnResult | None = None,
) -> list[CaseResult]:
    """Run ``scenario_ids`` (all at once per round), retrying only declared-flaky failures; one case each.

    ``run_batch(ids)`` runs scenarios concurrently and returns one result per id.
    ``on_result(result, attempt_number)`` is called for every attempt (for the audit trail).
    """
    attempts: dict[str, list[ScenarioResult]] = {sid: [] for sid in scenario_ids}
    todo = list(dict.fromkeys(scenario_ids))
    while todo:
        results = run_batch(todo)
        by_id = {r.scenario_id: r for r in results}
        again: list[str] = []
        for sid in todo:
            result = by_id.get(sid)
            if result is None:
                result = ScenarioResult(sid, None, "FAILED", error_message="no result came back for this run")
            attempts[sid].append(result)
            if on_result is not None:
                on_result(result, len(attempts[sid]))
            if should_retry(sid, _outcome(result), len(attempts[sid]) - 1, flaky, warning_policy):
                again.append(sid)
        todo = again
    return [build_case(sid, attempts[sid], warning_policy) for sid in dict.fromkeys(scenario_ids)]


def waiter_batch(
    waiter: ScenarioWaiter,
    deadline_s: float,
    on_error: Callable[[list[RunHandle], MlcdError], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunBatch:
    """A :data:`RunBatch` that triggers scenarios through ``waiter`` and waits for all of them.

    A scenario already running (started by someone else) is waited for first,
    within ``deadline_s``, then triggered. If waiting fails (node error),
    ``on_error(handles, exc)`` sees the runs already started before the error is
    raised again. Whenever the wait is given up (node error, SIGTERM, Ctrl-C), the
    runs this batch started and that have not finished are aborted.
    """

    def told(busy: list[str]) -> None:
        if progress is not None:
            progress(f"{', '.join(busy)} already running on the node (not started by this run): "
                     f"waiting up to {deadline_s:g}s for it to finish")

    def run(ids: list[str]) -> list[ScenarioResult]:
        waiter.wait_until_idle(ids, deadline_s, on_wait=told)
        handles = waiter.start_all(ids, deadline_s)
        done = False
        try:
            results = waiter.wait(handles)
            done = True
            return results
        except MlcdError as exc:
            if on_error is not None:
                on_error(handles, exc)
            raise
        finally:
            if not done:
                aborted = waiter.abort(handles)
                if aborted and progress is not None:
                    progress(f"aborted the scenario run(s) this command started: {', '.join(aborted)}")

    return run


@dataclass
class GateOutcome:
    """The verdict of one gate run."""

    cases: list[CaseResult]

    @property
    def passed(self) -> bool:
        """True when every case passed (an empty gate passes: nothing was asked)."""
        return all(c.passed for c in self.cases)

    @property
    def failed(self) -> list[CaseResult]:
        """The cases that did not pass."""
        return [c for c in self.cases if not c.passed]

    def summary(self) -> str:
        """One line: counts, and the first failing scenario with its step and error."""
        total = len(self.cases)
        retried = sum(c.flaky_retries for c in self.cases)
        text = f"{total - len(self.failed)}/{total} scenario(s) passed"
        if retried:
            text += f" ({retried} flaky retr{'y' if retried == 1 else 'ies'})"
        if self.failed:
            first = self.failed[0]
            where = f" at step '{first.failing_step}'" if first.failing_step else ""
            why = f": {first.error_message}" if first.error_message else ""
            names = ", ".join(f"{c.scenario_id} {c.outcome}" for c in self.failed)
            text += f"; failed: {names}; {first.scenario_id}{where}{why}"
            if first.run_id:
                text += f" (run {first.run_id})"
        return text


def write_gate_reports(
    out_dir: Path,
    environment: str,
    kind: str,
    cases: list[CaseResult],
    properties: dict[str, str],
) -> list[str]:
    """Write ``reports/<env>/<kind>.xml`` (JUnit) and its HTML report; return their paths.

    ``kind`` is ``tests`` (HTML ``report.html``) or ``smoke`` (HTML ``smoke.html``).
    """
    folder = out_dir / "reports" / environment
    folder.mkdir(parents=True, exist_ok=True)
    xml = write_junit(folder / f"{kind}.xml", environment, f"{environment}.{kind}", cases, properties)
    html_name = "report.html" if kind == "tests" else f"{kind}.html"
    title = f"{properties.get('project', '')} {kind} on {environment}".strip()
    html = write_html(folder / html_name, title, cases, properties)
    return [str(xml), str(html)]


def run_scenarios(
    node: DSSNode,
    project: str,
    env: EnvironmentConfig,
    scenario_ids: Sequence[str],
    audit: AuditTrail,
    progress: Callable[[str], None],
    *,
    kind: str,
    bundle_id: str | None,
    tick: float = 1.0,
) -> GateOutcome:
    """Run ``scenario_ids`` on ``env`` as a gate (``kind`` = tests | smoke); audit every attempt.

    Ids the node does not have become failed cases (they are not run).
    Node errors (unreachable, unauthorised) propagate: they are not quality failures.
    """
    listed = {str(s.get("id")) for s in node.list_scenarios(project)}
    present = [s for s in scenario_ids if s in listed]
    label = "test" if kind == "tests" else kind
    progress(f"running {len(present)} {label} scenario(s) at once: {', '.join(present) or 'none'}")

    def on_result(result: ScenarioResult, attempt: int) -> None:
        outcome = _outcome(result)
        audit.record(
            "run_scenario",
            outcome,
            node=env.name,
            environment=env.name,
            bundle_id=bundle_id,
            duration_ms=int((result.duration_s or 0.0) * 1000),
            detail={"scenario": result.scenario_id, "runId": result.run_id, "attempt": attempt, "gate": kind},
        )
        retry = " (flaky: will retry)" if should_retry(
            result.scenario_id, outcome, attempt - 1, env.flaky, env.warning
        ) else ""
        progress(f"{kind} {result.scenario_id} attempt {attempt}: {outcome} (run {result.run_id}){retry}")

    seen: dict[str, int] = {}

    def counted(result: ScenarioResult, attempt: int) -> None:
        seen[result.scenario_id] = attempt
        on_result(result, attempt)

    def on_error(handles: list[RunHandle], exc: MlcdError) -> None:
        # every run already started is said in the audit trail; unfinished ones are aborted
        for h in handles:
            attempt = seen.get(h.scenario_id, 0) + 1
            if h.result is not None:
                counted(h.result, attempt)
                continue
            audit.record(
                "run_scenario", "ERROR", node=env.name, environment=env.name, bundle_id=bundle_id,
                detail={"scenario": h.scenario_id, "runId": h.run_id, "attempt": attempt, "gate": kind,
                        "error": exc.one_line()},
            )  # fmt: skip
            progress(f"{kind} {h.scenario_id}: no result ({exc.one_line()}); aborting it")

    waiter = ScenarioWaiter(node, project, tick=tick)
    batch = waiter_batch(waiter, env.timeouts.scenario, on_error, progress)
    ran = run_gate(batch, present, env.flaky, env.warning, counted)
    by_id = {c.scenario_id: c for c in ran}
    cases = [by_id.get(sid) or missing_case(sid, env.name, project) for sid in dict.fromkeys(scenario_ids)]
    return GateOutcome(cases)
