"""`mlcd plan --env E` (and `mlcd deploy --env E --plan`): what a deploy would change; changes nothing."""

from __future__ import annotations

from mlcd.deployment import (
    archive_path,
    check_archive,
    check_project,
    imported_bundle_ids,
    make_plan,
    node_connection_names,
    project_remappings,
    stage_links,
)
from mlcd.runrecord import RunRecord
from mlcd.stages.runner import StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    """Print the deploy plan of this run's bundle for ``--env`` (the runner writes ``plan-<env>.json``)."""
    cfg = ctx.config()
    env = ctx.environment()
    record = RunRecord.load(ctx.out_dir)
    archive = archive_path(record, getattr(ctx.args, "archive", None))
    bundle = check_archive(record, archive)
    check_project(bundle, cfg.project)
    node = ctx.env_node()
    exists = node.project_exists(cfg.project)
    active = node.active_bundle_id(cfg.project) if exists else None
    imported = imported_bundle_ids(node, cfg.project) if exists else set()
    available, unknown = node_connection_names(node)
    plan = make_plan(
        env,
        cfg.project,
        bundle,
        record.sha256,
        project_exists=exists,
        active_now=active,
        imported_ids=imported,
        node_connections=available,
        approval_entry=dict(record.env(env.name)),
        connections_unknown=unknown,
        node_remappings=project_remappings(node, cfg.project) if exists else None,
    )
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
