"""`mlcd deploy --env E`: put this run's bundle on an environment, verified, or leave it as it was.

The audit ``deployment`` record (the success indicator) is written here only when
the deploy is the environment's last gate (no tests, no smoke); otherwise the
deploy writes an intermediate ``deploy`` DEPLOYED record and `mlcd test` or
`mlcd smoke` writes the final one.
"""

from __future__ import annotations

from mlcd.deployment import (
    archive_path,
    check_archive,
    check_project,
    deploy_bundle,
    env_lock,
    error_result,
    is_recorded,
    require_approval,
    stage_links,
)
from mlcd.errors import MlcdError
from mlcd.runrecord import RunRecord
from mlcd.stages import plan as plan_stage
from mlcd.stages.runner import StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    """Deploy (or with ``--plan`` only plan) the run record's bundle to ``--env``."""
    if getattr(ctx.args, "plan", False):
        return plan_stage.run(ctx)
    cfg = ctx.config()
    env = ctx.environment()
    pipeline = bool(getattr(ctx.args, "pipeline", False))
    last_gate = not env.tests.enabled and not env.smoke
    links = stage_links(ctx, env, cfg.project)
    try:
        record = RunRecord.load(ctx.out_dir)
        archive = archive_path(record, getattr(ctx.args, "archive", None))
        bundle = check_archive(record, archive)
        check_project(bundle, cfg.project)
        approver = require_approval(record, env)
        if approver:
            ctx.progress(f"approval of {env.name} by {approver} covers this bundle ({record.sha256[:12]}…)")
        node = ctx.env_node()
        ctx.progress(f"deploying bundle {bundle.bundle_id} to {env.name} ({env.node.url})")
        with env_lock(ctx, cfg.project, env):
            result = deploy_bundle(
                ctx,
                node,
                env,
                cfg.project,
                bundle,
                archive,
                record,
                final_record=last_gate and not pipeline,
            )
    except MlcdError as exc:
        if not is_recorded(exc):
            ctx.audit().deployment_outcome(
                env.name,
                "FAILED_UNCHANGED",
                bundle_id=_bundle_id(ctx),
                active_bundle_id=None,
                message=f"nothing was changed: {exc.one_line()}",
            )
        return error_result(ctx, exc, bundle_id=_bundle_id(ctx), links=links)
    if not last_gate and not pipeline:
        gates = " and ".join(g for g, on in (("tests", env.tests.enabled), ("smoke", bool(env.smoke))) if on)
        ctx.progress(f"the deployment's final audit record comes from the {gates} of {env.name}")
    return StageResult(
        outcome=result.outcome,
        message=result.message,
        bundle_id=result.bundle_id,
        details={"previousBundleId": result.previous, "activeBundleId": result.bundle_id},
        links=links,
    )


def _bundle_id(ctx: StageContext) -> str | None:
    try:
        return RunRecord.load(ctx.out_dir).bundle_id
    except MlcdError:
        return None
