"""`mlcd unwind --env E --reason TEXT`: after a later environment failed, roll E back or keep it, by policy.

The decision is :func:`mlcd.release.policy.decide` (``on_failure.earlier_environments``
in mlcd.yaml, ``--policy`` to override it, ``rollback_on_failure: false`` opting
one environment out); the rollback is the same as `mlcd rollback`'s. The stage
file ``unwind-<env>.json`` says ROLLED_BACK, KEPT or NOOP (exit 0), or
ROLLBACK_FAILED (exit 5).
"""

from __future__ import annotations

from typing import Any

from mlcd.commands.context import StageContext
from mlcd.commands.options import UnwindOptions
from mlcd.commands.result import StageResult
from mlcd.errors import RollbackFailed
from mlcd.release.policy import Unwind, decide
from mlcd.release.rollback import roll_back, rollback_target
from mlcd.runrecord import RunRecord
from mlcd.stages.common import error_result, release_for, stage_links
from mlcd.stages.rollback import record_rollback


def run(ctx: StageContext) -> StageResult:
    """Unwind ``--env`` (see the module docstring)."""
    env = ctx.environment()
    record = RunRecord.load(ctx.out_dir)
    opts = ctx.opts(UnwindOptions)
    policy = opts.policy or ctx.config().earlier_environments
    reason = opts.reason or "a later environment failed"
    bid = record.bundle_id
    entry = dict(record.env(env.name))
    choice = decide(policy, env.rollback_on_failure, entry, bid)
    links = stage_links(ctx, env, ctx.config().project)
    details: dict[str, Any] = {"policy": policy, "reason": reason, "decision": choice.value}
    if choice is Unwind.NOOP:
        why = (
            f"mlcd already handled {env.name} ({entry.get('state')})"
            if entry.get("state") in ("ROLLED_BACK", "NEEDS_ATTENTION")
            else f"this run did not change {env.name}"
        )
        return _kept(ctx, env.name, "NOOP", f"{why}: nothing to unwind", bid, details, links)
    if choice is Unwind.KEEP:
        why = (
            "on_failure.earlier_environments is keep" if policy == "keep" else "rollback_on_failure is false"
        )
        return _kept(
            ctx, env.name, "KEPT", f"{why}: bundle {bid} stays active on {env.name}", bid, details, links
        )
    rel = release_for(ctx, env, record)
    with rel.lock():
        target = rollback_target(entry, bid)
        if target is None:
            return _kept(
                ctx,
                env.name,
                "KEPT",
                f"{env.name} had no bundle before this run: bundle {bid} stays "
                "active (nothing to go back to)",
                bid,
                details,
                links,
            )
        done = roll_back(rel, target, from_bundle=bid, reason=reason)
    reports = done.reports
    links = stage_links(ctx, env, rel.project, reports)
    if not record_rollback(rel, done, active=bid, reason=reason):
        err = RollbackFailed(done.message, done.hint)
        err.details = {"rolledBackTo": target, "reports": reports, **details}
        return error_result(ctx, err, outcome="ROLLBACK_FAILED", bundle_id=bid, links=links)
    details.update({"rolledBackTo": done.target, "smoke": done.smoke_ran})
    return StageResult(
        outcome="ROLLED_BACK",
        message=f"{reason}: {done.message}",
        bundle_id=bid,
        reports=reports,
        details=details,
        links=links,
    )


def _kept(
    ctx: StageContext,
    env_name: str,
    outcome: str,
    message: str,
    bid: str,
    details: dict[str, Any],
    links: dict[str, str],
) -> StageResult:
    ctx.audit().record(
        "unwind",
        outcome,
        node=env_name,
        environment=env_name,
        bundle_id=bid,
        detail={"message": message, **details},
    )
    return StageResult(outcome=outcome, message=message, bundle_id=bid, details=details, links=links)
