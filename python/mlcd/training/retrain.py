"""`mlcd retrain`: run the retrain scenario, judge each new saved-model version, keep it only if it wins.

One :class:`Retrain` works on one environment's automation node, under its deploy
lock. Before anything runs it reads every gated saved model's active version (the
champion) and its metrics: an unknown saved model, or a metric the champion does
not report, stops it there (exit 2, nothing changed). Then it runs the retrain
scenario (bounded by ``timeouts.scenario``), reads the new version (the challenger)
and its metrics, judges it (:func:`mlcd.training.champion.judge`), activates it
only when it wins, and reads the active version back. Whatever went wrong after
the scenario started (a losing challenger the training activated, a read-back that
disagrees, a failed scenario that left a new version active, a node error, a
signal) ends with the champion set active again and read back. How each ending
counts is the release decision table (:func:`mlcd.release.decisions.after_failure`):
a losing challenger is a failed gate, anything else a failed activation; the
ledger writes the environment's one ``deployment`` record. Every step is audited
with the versions and metric values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcd.dss.errors import DSSError
from mlcd.dss.savedmodels import SavedModels, Version
from mlcd.errors import ExitCode, InputError, MlcdError
from mlcd.release.decisions import Decision, Failed, Rollback, after_failure
from mlcd.reports.results import CaseResult
from mlcd.training.champion import ModelGate, Verdict, judge

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig
    from mlcd.dss.node import DSSNode
    from mlcd.training.settings import TrainingConfig

SUCCEEDED = Decision("SUCCESS", int(ExitCode.OK), "SUCCEEDED")
UNCHANGED_GATE = Decision("GATE_FAILED", int(ExitCode.GATE_FAILED), "FAILED_UNCHANGED")
UNCHANGED_FAILED = Decision("FAILED", int(ExitCode.DEPLOY_FAILED), "FAILED_UNCHANGED")
_RECORD_RANK = {"SUCCEEDED": 0, "FAILED_UNCHANGED": 1, "FAILED_ROLLED_BACK": 2, "FAILED_NEEDS_ATTENTION": 3}


@dataclass
class ModelRun:
    """One gated saved model through a retrain: champion, challenger, verdict, what is active at the end."""

    gate: ModelGate
    versions_before: tuple[str, ...]
    champion: str | None
    champion_metrics: dict[str, float] | None
    challenger: str | None = None
    challenger_metrics: dict[str, float] | None = None
    verdict: Verdict | None = None
    active: str | None = None  # the active version read back at the end (None: unknown or none)
    decision: Decision | None = None
    message: str = ""
    touched: bool = False  # a version other than the champion was active at some point

    def as_dict(self) -> dict[str, Any]:
        """The model's part of the stage file: the two versions and their metric side by side."""
        metric = self.gate.metric
        return {
            "savedModel": self.gate.saved_model,
            "metric": metric,
            "direction": self.gate.direction,
            "rule": self.gate.describe(),
            "champion": {"version": self.champion, "value": (self.champion_metrics or {}).get(metric)},
            "challenger": {"version": self.challenger, "value": (self.challenger_metrics or {}).get(metric)},
            "verdict": self.verdict.as_dict() if self.verdict else None,
            "activeVersion": self.active,
            "outcome": self.decision.outcome if self.decision else None,
            "message": self.message,
        }


@dataclass
class RetrainOutcome:
    """How the retrain ended: the combined decision, one message, every model's part."""

    decision: Decision
    message: str
    models: list[ModelRun] = field(default_factory=list)
    scenario: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None  # what stopped a retrain that changed nothing (its own exit code)
    smoke: list[CaseResult] = field(default_factory=list)  # the smoke check after a promotion


def newest(versions: list[Version], ids: list[str]) -> str:
    """Of the versions ``ids``, the one trained last (``trainDate``; the list's last when dates are missing).

    The order of DSS's version list is not documented, so it is not relied on.
    """
    dated = [(v.train_date, i, v.id) for i, v in enumerate(versions) if v.id in ids]
    if all(isinstance(d, int | float) for d, _, _ in dated):
        return max(dated, key=lambda t: (t[0], t[1]))[2]
    return ids[-1]


def combined(models: list[ModelRun]) -> Decision:
    """The worst decision of the models (by audit record, then exit code)."""
    decisions = [m.decision or UNCHANGED_FAILED for m in models]
    return max(decisions, key=lambda d: (_RECORD_RANK[d.record or "FAILED_UNCHANGED"], d.exit_code or 0))


class Retrain:
    """One retrain on one environment (see the module doc)."""

    def __init__(
        self,
        node: DSSNode,
        project: str,
        env: EnvironmentConfig,
        training: TrainingConfig,
        audit: AuditTrail,
        progress: Callable[[str], None],
        gates: tuple[ModelGate, ...],
    ) -> None:
        self.node = node
        self.project = project
        self.env = env
        self.training = training
        self.audit = audit
        self.progress = progress
        self.gates = gates
        self.models = SavedModels(node, project)

    # -- audit ---------------------------------------------------------------------------------------
    def _record(self, operation: str, outcome: str, **detail: Any) -> None:
        self.audit.record(operation, outcome, node=self.env.name, environment=self.env.name, detail=detail)

    # -- 1. before anything changes ------------------------------------------------------------------
    def prepare(self) -> list[ModelRun]:
        """Champions and their metrics; InputError (exit 2) for an unknown model, metric or scenario."""
        sid = self.training.retrain_scenario
        scenarios = sorted(str(s.get("id")) for s in self.node.list_scenarios(self.project))
        if sid not in scenarios:
            raise InputError(
                f"retrain scenario {sid} does not exist in project {self.project} on {self.env.name}",
                f"set continuous_training.retrain_scenario to one of: {', '.join(scenarios) or '(none)'}",
            )
        known = self.models.ids()
        return [self._champion(gate, known) for gate in self.gates]

    def _champion(self, gate: ModelGate, known: list[str]) -> ModelRun:
        sm = gate.saved_model
        if sm not in known:
            raise InputError(
                f"saved model {sm} does not exist in project {self.project} on {self.env.name}",
                f"name one of: {', '.join(known) or '(none)'} under continuous_training.models",
            )
        versions = self.models.versions(sm)
        champion = next((v.id for v in versions if v.active), None)
        metrics = self.models.metrics(sm, champion, gate.evaluation_store) if champion else None
        if metrics is not None and gate.metric not in metrics:
            source = f"in evaluation store {gate.evaluation_store} " if gate.evaluation_store else ""
            raise InputError(
                f"saved model {sm} does not report {gate.metric} {source}(version {champion} on "
                f"{self.env.name}); it reports: {', '.join(metrics) or '(nothing)'}",
                f"set continuous_training.models.{sm}.metric to one of them"
                + (", or evaluate the active version into the store" if source else ""),
            )
        run = ModelRun(gate, tuple(v.id for v in versions), champion, metrics, active=champion)
        self._record("read_champion", "SUCCESS", savedModel=sm, version=champion, metric=gate.metric,
                     value=(metrics or {}).get(gate.metric), versions=list(run.versions_before))  # fmt: skip
        self.progress(f"saved model {sm}: champion {champion or '(none)'} {gate.metric}="
                      f"{(metrics or {}).get(gate.metric, '-')}")  # fmt: skip
        return run

    # -- 2. the retrain scenario ---------------------------------------------------------------------
    def run_scenario(self) -> tuple[bool, dict[str, Any]]:
        """Run the retrain scenario to its end (or its deadline); (passed, what the stage file shows)."""
        from mlcd.dss.waiter import ScenarioWaiter
        from mlcd.testing_gate import passes

        sid = self.training.retrain_scenario
        self.progress(f"running retrain scenario {sid} (at most {self.env.timeouts.scenario:g}s)")
        waiter = ScenarioWaiter(self.node, self.project)
        aborted: list[str] = []
        try:
            handle = waiter.start(sid, self.env.timeouts.scenario)
            try:
                result = waiter.wait([handle])[0]
            except BaseException:  # a signal or a node error: the run must not go on training unattended
                aborted = waiter.abort([handle])
                raise
        except BaseException as exc:
            why = exc.without_fix() if isinstance(exc, MlcdError) else type(exc).__name__
            self._record("retrain_scenario", "ERROR", scenario=sid, aborted=aborted, error=why)
            raise
        shown = {"id": sid, "outcome": result.outcome, "runId": result.run_id, "error": result.error_message}
        self._record("retrain_scenario", result.outcome, scenario=sid, runId=result.run_id,
                     error=result.error_message, durationS=result.duration_s)  # fmt: skip
        return passes(result.outcome, self.env.warning), shown

    # -- 3. judge and apply --------------------------------------------------------------------------
    def judge(self, run: ModelRun) -> None:
        """Find the challenger and its metrics, judge it; activate it if it wins, else keep the champion."""
        sm, gate = run.gate.saved_model, run.gate
        versions = self.models.versions(sm)
        active = next((v.id for v in versions if v.active), None)
        run.touched = run.touched or active != run.champion
        new = [v.id for v in versions if v.id not in run.versions_before]
        if not new:
            self._record("model_gate", "FAILED", savedModel=sm, reason="the retrain made no new version")
            run.message = f"{sm}: the retrain scenario made no new version; {run.champion} stays active"
            self._settle(run, Failed.ACTIVATION) if run.touched else self._unchanged(run, UNCHANGED_FAILED)
            return
        run.challenger = active if active in new else newest(versions, new)
        run.challenger_metrics = self.models.metrics(sm, run.challenger, gate.evaluation_store)
        run.verdict = verdict = judge(gate, run.challenger_metrics, run.champion_metrics)
        pair = {"championVersion": run.champion, "challengerVersion": run.challenger}
        outcome = "PASSED" if verdict.promote else "FAILED"
        self._record("model_gate", outcome, savedModel=sm, **pair, **verdict.as_dict())
        self.progress(f"saved model {sm}: challenger {run.challenger}: {verdict.reason}")
        if verdict.promote:
            self._promote(run, active)
        else:
            run.message = f"{sm}: challenger {run.challenger} kept out ({verdict.reason})"
            self._settle(run, Failed.TESTS) if active != run.champion else self._unchanged(
                run, UNCHANGED_GATE
            )

    def _promote(self, run: ModelRun, active: str | None) -> None:
        sm, challenger = run.gate.saved_model, str(run.challenger)
        try:
            if active != challenger:
                run.touched = True
                self._set_active(sm, challenger, "promote the challenger")
            now = self._read_back(sm, challenger)
        except MlcdError as exc:
            run.message = f"{sm}: activating challenger {challenger} failed ({exc.without_fix()})"
            self._settle(run, Failed.ACTIVATION)
            return
        if now != challenger:
            run.message = f"{sm}: challenger {challenger} is not active after activating it (active: {now})"
            self._settle(run, Failed.ACTIVATION)
            return
        run.active, run.decision = challenger, SUCCEEDED
        why = run.verdict.reason if run.verdict else ""
        run.message = f"{sm}: challenger {challenger} promoted over {run.champion or '(none)'} ({why})"

    def _set_active(self, sm: str, version: str, why: str) -> None:
        with self.audit.action("set_active_version", node=self.env.name, environment=self.env.name,
                               detail={"savedModel": sm, "version": version, "why": why}):  # fmt: skip
            self.models.set_active(sm, version)

    def _read_back(self, sm: str, expected: str) -> str | None:
        now = self.models.active(sm)
        self._record("verify_active_version", "SUCCESS" if now == expected else "FAILED", savedModel=sm,
                     expected=expected, active=now)  # fmt: skip
        return now

    # -- endings -------------------------------------------------------------------------------------
    def _unchanged(self, run: ModelRun, decision: Decision) -> None:
        run.active, run.decision = run.champion, decision

    def _settle(self, run: ModelRun, failed: Failed) -> None:
        """Set the champion active again and read it back; the decision table says how it ends."""
        rollback = self.restore(run)
        run.decision = after_failure(failed, True, True, rollback)
        after = {
            Rollback.VERIFIED: f"champion {run.champion} is active again (verified)",
            Rollback.NO_TARGET: "there is no champion to go back to: a person must choose the version",
        }.get(rollback, f"restoring champion {run.champion} failed: a person must check the saved model")
        run.message = f"{run.message}; {after}"

    def restore(self, run: ModelRun) -> Rollback:
        """Champion active, read back: VERIFIED, FAILED, or NO_TARGET (no champion)."""
        sm = run.gate.saved_model
        if run.champion is None:
            run.active = self._active_or_none(sm)
            return Rollback.NO_TARGET
        try:
            if self.models.active(sm) != run.champion:
                self._set_active(sm, run.champion, "restore the champion")
            run.active = self._read_back(sm, run.champion)
        except MlcdError:
            run.active = self._active_or_none(sm)
            return Rollback.FAILED
        return Rollback.VERIFIED if run.active == run.champion else Rollback.FAILED

    def _active_or_none(self, sm: str) -> str | None:
        try:
            return self.models.active(sm)
        except DSSError:
            return None

    def smoke_after_promotion(self, runs: list[ModelRun]) -> list[CaseResult]:
        """After a promotion, run the environment's smoke scenarios; if they fail, restore the champions."""
        promoted = [run for run in runs if run.decision is SUCCEEDED]
        if not promoted or not self.env.smoke:
            return []
        from mlcd.testing_gate import run_scenarios

        failed, why = Failed.SMOKE, ""
        cases: list[CaseResult] = []
        try:
            gate = run_scenarios(self.node, self.project, self.env, self.env.smoke, self.audit,
                                 self.progress, kind="smoke", bundle_id=None)  # fmt: skip
            cases = gate.cases
            why = "" if gate.passed else f"smoke failed after promotion ({gate.summary()})"
        except (MlcdError, KeyboardInterrupt) as exc:
            failed = Failed.NODE_ERROR if isinstance(exc, MlcdError) else Failed.ACTIVATION
            what = exc.without_fix() if isinstance(exc, MlcdError) else "interrupted"
            why = f"smoke could not complete after promotion ({what})"
        for run in promoted if why else []:
            run.message = f"{run.message}; {why}"
            self._settle(run, failed)
        return cases

    def after_broken(self, runs: list[ModelRun], what: str) -> None:
        """After a failed scenario, a node error or a signal: restore every champion that is not active."""
        for run in runs:
            if run.decision is not None:
                continue
            try:
                active = self.models.active(run.gate.saved_model)
            except DSSError:
                active, run.touched = None, True  # unknown: restore (or say it is unknown)
            if active != run.champion:
                run.touched = True
            run.message = f"{run.gate.saved_model}: {what}"
            if run.touched:
                self._settle(run, Failed.ACTIVATION)
            else:
                run.message += f"; champion {run.champion} stays active"
                self._unchanged(run, UNCHANGED_FAILED)


def retrain(r: Retrain) -> RetrainOutcome:
    """The whole retrain after :meth:`Retrain.prepare` passed (see the module doc)."""
    runs = r.prepare()
    scenario: dict[str, Any] = {}
    error: BaseException | None = None
    try:
        passed, scenario = r.run_scenario()
        if not passed:
            why = scenario.get("error") or scenario["outcome"]
            r.after_broken(runs, f"retrain scenario {scenario['id']} ended {scenario['outcome']} ({why})")
        for run in runs:
            if run.decision is None:
                r.judge(run)
    except (MlcdError, KeyboardInterrupt) as exc:
        what = exc.without_fix() if isinstance(exc, MlcdError) else "interrupted"
        r.after_broken(runs, f"the retrain stopped: {what}")
        if not any(run.touched for run in runs):
            error = exc
    smoke = r.smoke_after_promotion(runs)
    decision = combined(runs)
    return RetrainOutcome(decision, "; ".join(run.message for run in runs), runs, scenario, error, smoke)
