"""`mlcd smoke --env E`: run the smoke scenario(s) after a deploy; roll back automatically on failure."""

from __future__ import annotations

from mlcd.deployment import error_after_deploy_result, gate_failure_result
from mlcd.errors import ExitCode, MlcdError
from mlcd.runrecord import RunRecord
from mlcd.stages.runner import StageContext, StageResult
from mlcd.testing_gate import run_scenarios, write_gate_reports


def run(ctx: StageContext) -> StageResult:
    """Run the smoke scenarios of ``--env``; on failure roll back (exit 4), else 5, 7 or 3."""
    cfg = ctx.config()
    env = ctx.environment()
    project = cfg.project
    record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
    bundle_id = record.bundle_id if record is not None else None
    if not env.smoke:
        return StageResult(
            outcome="NOOP", message=f"no smoke scenario configured for {env.name}", bundle_id=bundle_id
        )
    node = ctx.env_node()
    allow_rollback = env.rollback_on_failure and not getattr(ctx.args, "no_rollback", False)
    try:
        active = node.active_bundle_id(project)
        gate = run_scenarios(
            node, project, env, list(env.smoke), ctx.audit(), ctx.progress, kind="smoke", bundle_id=active
        )
    except MlcdError as exc:
        result = error_after_deploy_result(
            ctx, node, env, project, record, exc, what="smoke", allow_rollback=allow_rollback
        )
        if result is None:
            raise
        return result
    properties = {"project": project, "environment": env.name, "bundleId": active or "", "node": env.node.url}
    reports = write_gate_reports(ctx.out_dir, env.name, "smoke", gate.cases, properties)
    summary = gate.summary()
    details = {"summary": summary, "cases": {c.scenario_id: c.outcome for c in gate.cases}}
    if record is not None:
        record.update_env(env.name, smoke={"passed": gate.passed, "summary": summary, "bundleId": active})
    if gate.passed:
        return StageResult(
            outcome="SUCCESS",
            message=f"smoke passed on {env.name}: {summary}",
            bundle_id=bundle_id,
            reports=reports,
            details=details,
        )
    return gate_failure_result(
        ctx,
        node,
        env,
        project,
        record,
        f"smoke failed on {env.name}: {summary}",
        f"open {reports[1]} for the failing step and log, fix the bundle, deploy again",
        reports,
        details,
        allow_rollback=allow_rollback,
        rolled_back_exit=int(ExitCode.ROLLED_BACK),
        nothing_exit=int(ExitCode.NOTHING_TO_ROLL_BACK),
    )
