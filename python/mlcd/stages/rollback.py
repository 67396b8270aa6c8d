"""`mlcd rollback --env E [--to BUNDLE]`: re-activate the previous or a named bundle, verify, re-run smoke."""

from __future__ import annotations

from mlcd.deployment import (
    STATE_ROLLED_BACK,
    env_lock,
    error_result,
    imported_bundle_ids,
    rollback_and_check,
    rollback_target,
    stage_links,
)
from mlcd.errors import InputError, MlcdError, NothingToRollBack
from mlcd.runrecord import RunRecord
from mlcd.stages.runner import StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    """Roll ``--env`` back; outcome ROLLED_BACK with exit 0 when verified and smoke passes.

    Exit 7 when there is nothing to go back to, 5 when the rollback or the smoke
    check after it fails, 2 when ``--to`` names a bundle not imported there.
    Outcome NOOP (exit 0, no new audit ``deployment`` record) when the
    environment was already rolled back to the target.
    """
    cfg = ctx.config()
    env = ctx.environment()
    project = cfg.project
    explicit: str | None = getattr(ctx.args, "to", None)
    reason = str(getattr(ctx.args, "reason", None) or "requested")
    record: RunRecord | None = None
    if RunRecord.exists(ctx.out_dir) or not explicit:
        record = RunRecord.load(ctx.out_dir)
    bundle_id = record.bundle_id if record is not None else None
    entry = dict(record.env(env.name)) if record is not None else {}
    node = ctx.env_node()
    audit = ctx.audit()
    links = stage_links(ctx, env, project)
    with env_lock(ctx, project, env):
        active = node.active_bundle_id(project) if node.project_exists(project) else None
        target = rollback_target(entry, bundle_id or "", explicit)
        if target is None:
            if "previousBundleId" in entry:
                why = "this run's deploy was the first one there"
            else:
                why = "this run recorded no deploy there"
            raise NothingToRollBack(
                f"nothing to roll back to on {env.name}: {why}; {active or 'no bundle'} stays active",
                f"pass --to BUNDLE to re-activate a bundle imported on {env.name}",
            )
        if explicit:
            imported = imported_bundle_ids(node, project) if active is not None else set()
            if explicit not in imported:
                raise InputError(
                    f"bundle {explicit} is not imported in project {project} on {env.name}",
                    f"choose one of: {', '.join(sorted(imported)) or '(none)'}",
                )
        if active == target and entry.get("state") == STATE_ROLLED_BACK:
            return StageResult(
                outcome="NOOP",
                message=f"already rolled back to {target} on {env.name}: nothing to do",
                bundle_id=bundle_id,
                details={"from": active, "to": target, "rolledBackTo": target, "reason": reason},
                links=links,
            )
        ctx.progress(f"active bundle now: {active or '(none)'}; rolling back to {target}")
        try:
            done = rollback_and_check(
                ctx, node, env, project, record, target, bundle_id=active, reason=reason,
                explicit=bool(explicit),
            )
        except MlcdError as exc:
            audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                     active_bundle_id=None, message=exc.one_line())
            after = [str(r) for r in (getattr(exc, "details", None) or {}).get("reports", [])]
            return error_result(ctx, exc, bundle_id=bundle_id, links=stage_links(ctx, env, project, after))
    audit.deployment_outcome(env.name, "FAILED_ROLLED_BACK", bundle_id=bundle_id or active,
                             active_bundle_id=done.target, message=f"{reason}: {done.message}")
    return StageResult(
        outcome="ROLLED_BACK",
        message=done.message,
        bundle_id=bundle_id,
        reports=done.reports,
        details={"from": active, "to": done.target, "rolledBackTo": done.target, "smoke": done.smoke_ran,
                 "reason": reason},
        links=stage_links(ctx, env, project, done.reports),
    )
