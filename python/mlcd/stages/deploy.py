"""`mlcd deploy --env E`: put this run's bundle on an environment, verified, or leave it as it was.

The audit ``deployment`` record (the success indicator) is written here only when
the deploy is the environment's last gate (no tests, no smoke); otherwise the
deploy writes an intermediate ``deploy`` DEPLOYED record and `mlcd test` or
`mlcd smoke` writes the final one. The steps and their rules are in
:mod:`mlcd.release.deploy`.
"""

from __future__ import annotations

from mlcd.commands.context import StageContext
from mlcd.commands.options import DeployOptions
from mlcd.commands.result import StageResult
from mlcd.errors import MlcdError, NodeError
from mlcd.release.approval import require_approval
from mlcd.release.archive import archive_path, check_archive, check_project
from mlcd.release.deploy import deploy_bundle
from mlcd.release.ledger import Ledger
from mlcd.release.session import Release
from mlcd.release.target import AutomationNodeTarget, active_or_none
from mlcd.runrecord import RunRecord
from mlcd.stages import plan as plan_stage
from mlcd.stages.common import deployer_health, error_result, release_for, stage_links


def run(ctx: StageContext) -> StageResult:
    """Deploy (or with ``--plan`` only plan) the run record's bundle to ``--env``."""
    if ctx.opts(DeployOptions).plan:
        return plan_stage.run(ctx)
    cfg = ctx.config()
    env = ctx.environment()
    if env.nodes:  # a multi-node environment: mlcd.stages.fleet
        from mlcd.stages import fleet

        return fleet.deploy(ctx)
    last_gate = not env.tests.enabled and not env.smoke
    links = stage_links(ctx, env, cfg.project)
    record: RunRecord | None = None
    rel: Release | None = None
    try:
        record = RunRecord.load(ctx.out_dir)
        archive = archive_path(record, ctx.opts(DeployOptions).archive)
        bundle = check_archive(record, archive)
        check_project(bundle, cfg.project)
        approver = require_approval(record, env)
        if approver:
            ctx.progress(f"approval of {env.name} by {approver} covers this bundle ({record.sha256[:12]}…)")
        rel = release_for(ctx, env, record)
        ctx.progress(f"deploying bundle {bundle.bundle_id} to {env.name} ({env.node.url})")
        with rel.lock():
            result = deploy_bundle(
                rel, bundle, archive, record.sha256, final_record=last_gate and not ctx.options.pipeline
            )
    except MlcdError as exc:
        health = deployer_health(rel)
        if not exc.recorded:
            unchanged(
                ctx,
                record,
                env.name,
                f"nothing was changed: {exc.one_line()}",
                read_node=not isinstance(exc, NodeError),
            )
        return error_result(ctx, exc, bundle_id=record.bundle_id if record else None, links=links, **health)
    health = deployer_health(rel)
    if not last_gate and not ctx.options.pipeline:
        gates = " and ".join(g for g, on in (("tests", env.tests.enabled), ("smoke", bool(env.smoke))) if on)
        ctx.progress(f"the deployment's final audit record comes from the {gates} of {env.name}")
    return StageResult(
        outcome=result.outcome,
        message=result.message,
        bundle_id=result.bundle_id,
        details={"previousBundleId": result.previous, "activeBundleId": result.bundle_id}
        | health.get("details", {}),
        reports=health.get("reports", []),
        links=links,
    )


def unchanged(
    ctx: StageContext, record: RunRecord | None, env_name: str, message: str, *, read_node: bool
) -> None:
    """Record FAILED_UNCHANGED for ``env_name``, naming the bundle active there (read if the node answers)."""
    active = record.env(env_name).get("activeBundleId") if record is not None else None
    if read_node:
        try:
            target = AutomationNodeTarget(ctx.env_node(env_name), ctx.config().project, env_name)
            active = active_or_none(target) if target.project_exists() else None
        except MlcdError:
            pass
    Ledger(ctx.audit(), record, env_name).final(
        "FAILED_UNCHANGED", bundle_id=record.bundle_id if record else None, active=active, message=message
    )
