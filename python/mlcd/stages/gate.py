"""What `mlcd test` and `mlcd smoke` share: run a gate on the active bundle, report, decide.

* The gate runs on the bundle active on the node; when this run deployed the
  environment, that must be this run's bundle (else exit 2: deploy first).
* A gate that cannot complete (node error, a scenario already running past
  its timeout) on an environment this run deployed is rolled back when allowed
  (exit 4), else needs a person (exit 5; also when the node cannot be reached).
* The final audit ``deployment`` record comes from the environment's last gate
  (smoke when it has smoke scenarios, else tests) when this run deployed it,
  outside `mlcd run` (which writes its own), once per deployment.
* Reports: ``reports/<env>/<kind>.xml`` and its HTML; after a rollback their
  properties say how the rollback went.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlcd.deployment import (
    check_active_is_ours,
    deployed_by_this_run,
    error_after_deploy_result,
    gate_failure_result,
    last_final_succeeded,
    stage_links,
)
from mlcd.dss.node import DSSNode
from mlcd.errors import ExitCode, MlcdError
from mlcd.runrecord import RunRecord
from mlcd.stages.runner import StageContext, StageResult
from mlcd.testing_gate import run_scenarios, write_gate_reports


def run_gate(
    ctx: StageContext, kind: str, select: Callable[[list[str]], list[str]], *, last_gate: bool
) -> StageResult:
    """Run the ``kind`` gate (``tests`` | ``smoke``) of ``--env`` (see the module docstring).

    ``select(ids on the node)`` returns the scenario ids to run (or raises ConfigError).
    """
    cfg = ctx.config()
    env = ctx.environment()
    project = cfg.project
    record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
    bundle_id = record.bundle_id if record is not None else None
    node = ctx.env_node()
    label = "tests" if kind == "tests" else kind
    allow_rollback = env.rollback_on_failure and not getattr(ctx.args, "no_rollback", False)
    exits = {
        "rolled_back_exit": int(ExitCode.GATE_FAILED if kind == "tests" else ExitCode.ROLLED_BACK),
        "nothing_exit": int(ExitCode.GATE_FAILED if kind == "tests" else ExitCode.NOTHING_TO_ROLL_BACK),
    }
    details: dict[str, Any] = {"activeBundleId": None}
    try:
        active = node.active_bundle_id(project)
    except MlcdError as exc:
        return _after_error(ctx, node, record, kind, exc, details, allow_rollback)
    check_active_is_ours(record, env.name, active)
    details["activeBundleId"] = active
    try:
        listed = [str(s.get("id")) for s in node.list_scenarios(project)]
    except MlcdError as exc:
        return _after_error(ctx, node, record, kind, exc, details, allow_rollback)
    scenario_ids = select(listed)
    try:
        gate = run_scenarios(node, project, env, scenario_ids, ctx.audit(), ctx.progress, kind=kind,
                             bundle_id=active)
    except MlcdError as exc:
        return _after_error(ctx, node, record, kind, exc, details, allow_rollback)
    properties = {
        "project": project,
        "environment": env.name,
        "bundleId": active or "",
        "warningPolicy": env.warning,
        "node": env.node.url,
    }
    reports = write_gate_reports(ctx.out_dir, env.name, kind, gate.cases, properties)
    summary = gate.summary()
    details.update({"summary": summary, "cases": {c.scenario_id: c.outcome for c in gate.cases}})
    if record is not None:
        record.update_env(env.name, **{kind: {"passed": gate.passed, "summary": summary, "bundleId": active}})
    if gate.passed:
        ours = record is not None and deployed_by_this_run(record.env(env.name), record.bundle_id)
        if (
            ours
            and last_gate
            and not getattr(ctx.args, "pipeline", False)
            and not last_final_succeeded(ctx, env.name, str(active))
        ):
            ctx.audit().deployment_outcome(
                env.name, "SUCCEEDED", bundle_id=active, active_bundle_id=active,
                message=f"bundle {active} deployed to {env.name}; {label} passed: {summary}",
            )
        return StageResult(
            outcome="SUCCESS",
            message=f"{label} passed on {env.name}: {summary}",
            bundle_id=bundle_id,
            reports=reports,
            details=details,
            links=stage_links(ctx, env, project, reports),
        )
    report_name = reports[1]
    result = gate_failure_result(
        ctx, node, env, project, record,
        f"{label} failed on {env.name}: {summary}",
        f"open {report_name} for the failing step and log"
        + (" (or the Jenkins test view)" if kind == "tests" else ", fix the bundle, deploy again"),
        reports, details, allow_rollback=allow_rollback, **exits,
    )
    # the gate's own report says how the rollback after it went
    properties["outcome"] = result.outcome
    if result.details.get("rolledBackTo"):
        properties["rolledBackTo"] = str(result.details["rolledBackTo"])
    properties["rollback"] = result.message
    write_gate_reports(ctx.out_dir, env.name, kind, gate.cases, properties)
    return result


def _after_error(
    ctx: StageContext,
    node: DSSNode,
    record: RunRecord | None,
    kind: str,
    exc: MlcdError,
    details: dict[str, Any],
    allow_rollback: bool,
) -> StageResult:
    """The gate could not complete: see :func:`error_after_deploy_result`; re-raise when not ours."""
    env = ctx.environment()
    result = error_after_deploy_result(
        ctx, node, env, ctx.config().project, record, exc, what=kind, allow_rollback=allow_rollback,
        details=details,
    )
    if result is None:
        raise exc
    return result
