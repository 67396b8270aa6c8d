"""The test and smoke gates on the active bundle, and what happens when one fails or cannot complete.

* The gate runs on the bundle active on the node; when this run deployed the
  environment, that must be this run's bundle (else exit 2: deploy first).
* A failed gate, or one that cannot complete (node error, a scenario already
  running past its timeout), ends through :func:`mlcd.release.failure.settle`.
* The final audit ``deployment`` record comes from the environment's last gate
  (smoke when it has smoke scenarios, else tests) when this run deployed it,
  outside `mlcd run` (which writes its own), once per deployment.
* Reports: ``reports/<env>/<kind>.xml`` and its HTML; after a rollback their
  properties say how the rollback went.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcd.errors import ConfigError, InputError, MlcdError, NodeError
from mlcd.release.decisions import Failed
from mlcd.release.failure import Settled, settle
from mlcd.reports import shown_path

if TYPE_CHECKING:
    from mlcd.release.session import Release
    from mlcd.runrecord import RunRecord


@dataclass
class GateRun:
    """A gate's verdict: passed, or settled (rolled back, kept, or needing a person)."""

    kind: str
    passed: bool
    summary: str
    reports: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    settled: Settled | None = None


GATE_OPERATION = "gate"  # the audit record of a gate's verdict on a bundle (after its flaky retries)


def failed_gates(records: list[dict[str, Any]], bundle_id: str) -> list[str]:
    """The gates whose last verdict on ``bundle_id`` failed, as "tests gate on test (summary)"."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        if r.get("operation") == GATE_OPERATION and r.get("bundleId") == bundle_id:
            detail = r.get("detail") or {}
            last[(str(r.get("environment")), str(detail.get("gate")))] = r
    return [
        f"{gate} gate on {env} ({(r.get('detail') or {}).get('summary')})"
        for (env, gate), r in last.items()
        if r.get("outcome") == "FAILED"
    ]


def check_active_is_ours(record: RunRecord | None, env_name: str, active: str | None) -> None:
    """Refuse (exit 2) to test another bundle than the one this run deployed on ``env_name``."""
    if record is None:
        return
    entry = record.env(env_name)
    if entry.get("bundleId") != record.bundle_id and entry.get("deployedBundleId") != record.bundle_id:
        return  # this run did not deploy there: the gate tests whatever is active
    if active != record.bundle_id:
        state = entry.get("state")
        why = (
            f"this run's deploy of {record.bundle_id} to {env_name} did not activate it (state {state}): "
            if entry.get("deployedBundleId") != record.bundle_id and state in ("UNCHANGED", "DEPLOYING")
            else ""
        )
        raise InputError(
            f"{why}{active or 'no bundle'} is active on {env_name}, not this run's {record.bundle_id}: "
            "deploy first",
            f"run `mlcd deploy --env {env_name}`, then this command again",
        )


def gate_on_active(
    rel: Release,
    record: RunRecord | None,
    kind: str,
    select: Callable[[list[str]], list[str]],
    *,
    last_gate: bool,
    allowed: bool,
    final_record: bool,
) -> GateRun:
    """Run the ``kind`` gate (tests | smoke) on the active bundle and settle a failure.

    ``select(ids on the node)`` returns the scenario ids to run (or raises ConfigError).
    A node error on an environment this run did not deploy is re-raised as it is.
    """
    details: dict[str, Any] = {"activeBundleId": None}
    try:
        active = rel.target.active_bundle()
        check_active_is_ours(record, rel.env.name, active)
        details["activeBundleId"] = active
        ids = select(rel.target.scenario_ids())
        gate = rel.target.run_scenarios(rel.env, ids, rel.audit, rel.progress, kind=kind, bundle_id=active)
    except (InputError, ConfigError):
        raise
    except MlcdError as exc:
        return _could_not_complete(rel, kind, exc, details, allowed)
    return _verdict(
        rel,
        record,
        kind,
        gate,
        active,
        details,
        last_gate=last_gate,
        allowed=allowed,
        final_record=final_record,
    )


def _could_not_complete(
    rel: Release, kind: str, exc: MlcdError, details: dict[str, Any], allowed: bool
) -> GateRun:
    if not rel.ledger.ours():
        raise exc
    failed = Failed.UNREACHABLE if isinstance(exc, NodeError) else Failed.NODE_ERROR
    settled = settle(
        rel,
        failed,
        f"{kind} on {rel.env.name} could not complete: {exc.message}",
        None,
        allowed=allowed,
        reason=f"{kind} could not complete",
        gate=kind,
    )
    details.update({"error": exc.one_line(), "errorCategory": exc.category})
    return GateRun(kind, False, exc.one_line(), settled.reports, details, settled)


def _verdict(
    rel: Release,
    record: RunRecord | None,
    kind: str,
    gate: Any,
    active: str | None,
    details: dict[str, Any],
    *,
    last_gate: bool,
    allowed: bool,
    final_record: bool,
) -> GateRun:
    from mlcd.testing_gate import write_gate_reports

    env = rel.env
    label = "tests" if kind == "tests" else kind
    properties = {
        "project": rel.project,
        "environment": env.name,
        "bundleId": active or "",
        "warningPolicy": env.warning,
        "node": env.node.url,
    }
    reports = write_gate_reports(rel.out_dir, env.name, kind, gate.cases, properties)
    summary = gate.summary()
    details.update({"summary": summary, "cases": {c.scenario_id: c.outcome for c in gate.cases}})
    if record is not None:
        record.update_env(env.name, **{kind: {"passed": gate.passed, "summary": summary, "bundleId": active}})
    rel.audit.record(
        GATE_OPERATION,
        "PASSED" if gate.passed else "FAILED",
        node=env.name,
        environment=env.name,
        bundle_id=active,
        detail={"gate": kind, "summary": summary},
    )
    if gate.passed:
        if rel.ledger.ours() and last_gate and final_record:
            rel.ledger.succeeded_once(
                str(active), f"bundle {active} deployed to {env.name}; {label} passed: {summary}"
            )
        return GateRun(kind, True, summary, reports, details)
    hint = f"open {shown_path(reports[1])} for the failing step and log" + (
        " (or the Jenkins test view)" if kind == "tests" else ", fix the bundle, deploy again"
    )
    settled = settle(
        rel,
        Failed.TESTS if kind == "tests" else Failed.SMOKE,
        f"{label} failed on {env.name}: {summary}",
        hint,
        allowed=allowed,
        gate=kind,
    )
    # the gate's own report says how the rollback after it went
    properties["outcome"] = settled.decision.outcome
    if settled.rolled_back_to:
        properties["rolledBackTo"] = settled.rolled_back_to
    properties["rollback"] = settled.message
    write_gate_reports(rel.out_dir, env.name, kind, gate.cases, properties)
    return GateRun(kind, False, summary, reports + settled.reports, details, settled)
