"""`mlcd plan --env E` (and `mlcd deploy --env E --plan`): what a deploy would change; changes nothing."""

from __future__ import annotations

from mlcd.commands.context import StageContext
from mlcd.commands.options import PlanOptions
from mlcd.commands.result import StageResult
from mlcd.release.archive import archive_path, check_archive, check_project
from mlcd.release.plan import make_plan
from mlcd.release.target import AutomationNodeTarget
from mlcd.runrecord import RunRecord
from mlcd.stages.common import stage_links


def run(ctx: StageContext) -> StageResult:
    """Print the deploy plan of this run's bundle for ``--env`` (the runner writes ``plan-<env>.json``)."""
    cfg = ctx.config()
    env = ctx.environment()
    record = RunRecord.load(ctx.out_dir)
    archive = archive_path(record, ctx.opts(PlanOptions).archive)
    bundle = check_archive(record, archive)
    check_project(bundle, cfg.project)
    if env.nodes:  # a multi-node environment: mlcd.stages.fleet
        from mlcd.stages import fleet

        return fleet.plan(ctx, record, bundle)
    target = AutomationNodeTarget(ctx.env_node(), cfg.project, env.name)
    exists = target.project_exists()
    available, unknown = target.connections()
    plan = make_plan(
        env,
        cfg.project,
        bundle,
        record.sha256,
        project_exists=exists,
        active_now=target.active_bundle() if exists else None,
        imported_ids=set(target.imported_bundles()) if exists else set(),
        node_connections=available,
        approval_entry=dict(record.env(env.name)),
        connections_unknown=unknown,
        node_remappings=target.remappings() if exists else None,
    )
    if not env.settings.empty:
        from mlcd.release import envapply

        now = envapply.read_now(target, env.settings, exists)
        values = envapply.values_if_known(env.settings, env.name)
        plan.settings_managed = True
        plan.settings_changes = [c.line() for c in envapply.changes(env.settings, now, values)]
    for line in plan.lines():
        ctx.progress(line)
    what = f"{plan.active_now or 'nothing'} -> {plan.bundle_id}"
    if plan.noop:
        what = "no change (already active)"
    path = ctx.out_dir / f"plan-{env.name}.json"
    return StageResult(
        outcome="NOOP" if plan.noop else "SUCCESS",
        message=f"plan for {env.name}: {what}; nothing was changed (plan in {path})",
        bundle_id=bundle.bundle_id,
        reports=[str(path)],
        details={"plan": plan.to_dict()},
        links=stage_links(ctx, env, cfg.project),
    )
