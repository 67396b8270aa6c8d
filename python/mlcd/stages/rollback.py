"""`mlcd rollback --env E [--to BUNDLE]`: re-activate the previous or a named bundle, verify, re-run smoke."""

from __future__ import annotations

from typing import Any

from mlcd.audit import read_audit
from mlcd.commands.context import StageContext
from mlcd.commands.options import RollbackOptions
from mlcd.commands.result import StageResult
from mlcd.errors import InputError, Interrupted, MlcdError, NothingToRollBack, RollbackFailed
from mlcd.release.decisions import STATE_ROLLED_BACK, Rollback
from mlcd.release.gate import failed_gates
from mlcd.release.rollback import RollbackDone, roll_back, rollback_target
from mlcd.release.session import Release
from mlcd.release.target import active_or_none
from mlcd.runrecord import RunRecord
from mlcd.stages.common import deployer_health, error_result, release_for, stage_links


def run(ctx: StageContext) -> StageResult:
    """Roll ``--env`` back; outcome ROLLED_BACK with exit 0 when verified and smoke passes.

    Exit 7 when there is nothing to go back to, 5 when the rollback or the smoke
    check after it fails, 2 when ``--to`` names a bundle not imported there.
    Outcome NOOP (exit 0, no new audit ``deployment`` record) when the
    environment was already rolled back to the target.
    """
    env = ctx.environment()
    if env.nodes:  # a multi-node environment: mlcd.stages.fleet
        from mlcd.stages import fleet

        return fleet.rollback(ctx)
    opts = ctx.opts(RollbackOptions)
    explicit = opts.to
    reason = opts.reason or "requested"
    record: RunRecord | None = None
    if RunRecord.exists(ctx.out_dir) or not explicit:
        record = RunRecord.load(ctx.out_dir)
    rel = release_for(ctx, env, record)
    bundle_id = rel.bundle_id
    entry = rel.ledger.entry
    links = stage_links(ctx, env, rel.project)
    with rel.lock():
        active = rel.target.active_bundle() if rel.target.project_exists() else None
        target = _target(rel, entry, active, explicit)
        warning = _gate_history(ctx, rel, target, explicit, opts.force)
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
            done = roll_back(rel, target, from_bundle=active, reason=reason, explicit=bool(explicit))
        except KeyboardInterrupt as exc:  # a signal: recorded as the node shows it
            err = interrupted(rel, exc, target, active)
            return error_result(ctx, err, bundle_id=bundle_id, links=links)
    health = deployer_health(rel)  # through the Project Deployer: the rollback's health gate
    done.reports += health.get("reports", [])
    if not record_rollback(rel, done, active=active, reason=reason):
        err = RollbackFailed(done.message, done.hint)
        err.details = {"rolledBackTo": target, "reports": done.reports, **health.get("details", {})}
        return error_result(
            ctx, err, bundle_id=bundle_id, links=stage_links(ctx, env, rel.project, done.reports)
        )
    return StageResult(
        outcome="ROLLED_BACK",
        message=done.message,
        bundle_id=bundle_id,
        reports=done.reports,
        details={
            "from": active,
            "to": done.target,
            "rolledBackTo": done.target,
            "smoke": done.smoke_ran,
            "reason": reason,
            **health.get("details", {}),
            **({"forced": True, "failedGates": warning} if warning else {}),
        },
        links=stage_links(ctx, env, rel.project, done.reports),
    )


def _target(rel: Release, entry: dict[str, Any], active: str | None, explicit: str | None) -> str:
    """The bundle to go back to; NothingToRollBack (7) without one, InputError (2) for one not imported."""
    name = rel.env.name
    target = rollback_target(entry, rel.bundle_id or "", explicit)
    if target is None:
        why = (
            "this run's deploy was the first one there"
            if "previousBundleId" in entry
            else ("this run recorded no deploy there")
        )
        raise NothingToRollBack(
            f"nothing to roll back to on {name}: {why}; {active or 'no bundle'} stays active",
            f"pass --to BUNDLE to re-activate a bundle imported on {name}",
        )
    if explicit:
        imported = set(rel.target.imported_bundles()) if active is not None else set()
        if explicit not in imported:
            raise InputError(
                f"bundle {explicit} is not imported in project {rel.project} on {name}",
                f"choose one of: {', '.join(sorted(imported)) or '(none)'}",
            )
    return target


def _gate_history(
    ctx: StageContext, rel: Release, target: str, explicit: str | None, force: bool
) -> list[str]:
    """The failed gates of an explicit ``--to`` bundle: InputError (2) without ``--force``, else said."""
    if not explicit:
        return []
    failed = failed_gates(read_audit(ctx.audit().path), target) if ctx.audit().path.exists() else []
    if not failed:
        return []
    what = f"bundle {target} failed its {'; '.join(failed)}"
    if not force:
        raise InputError(
            f"{what}: not re-activated on {rel.env.name}",
            "pass --force to re-activate it anyway, or choose another bundle with --to",
        )
    ctx.progress(f"{what}; re-activating it as --force asks")
    return failed


def interrupted(rel: Release, exc: KeyboardInterrupt, target: str, active: str | None) -> MlcdError:
    """Record a rollback stopped by a signal as the node shows it; the error to end with (exit 5).

    Re-raises ``exc`` (the command ends interrupted) when the node still runs ``active``:
    nothing changed, and the FAILED_UNCHANGED record says so.
    """
    name = rel.env.name
    what = f"rollback of {name} to {target} was interrupted ({_signal(exc)})"
    try:
        now: str | None = rel.target.active_bundle()
    except MlcdError as read:
        now = None
        what += f"; the active bundle could not be read: {read.one_line()}"
    if now == active and now != target:
        message = f"{what} before its activation; {active or 'no bundle'} is still active, unchanged"
        rel.ledger.final("FAILED_UNCHANGED", bundle_id=rel.bundle_id, active=active, message=message)
        raise exc
    state = f"{now} is active (verified), its smoke check was not re-run" if now else "not verified"
    message = f"{what} after its activation: {state}"
    rel.ledger.final("FAILED_NEEDS_ATTENTION", bundle_id=rel.bundle_id, active=now, message=message)
    err = RollbackFailed(message, f"run `mlcd smoke --env {name}` or `mlcd rollback --env {name}` again")
    err.recorded = True
    return err


def _signal(exc: KeyboardInterrupt) -> str:
    return exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"


def record_rollback(rel: Release, done: RollbackDone, *, active: str | None, reason: str) -> bool:
    """Record a requested rollback through the ledger; True when it was verified (and its smoke passed)."""
    if done.result is Rollback.VERIFIED:
        rel.ledger.final(
            "FAILED_ROLLED_BACK",
            bundle_id=rel.bundle_id or active,
            active=done.target,
            message=f"{reason}: {done.message}",
        )
        return True
    now = done.target if done.result is Rollback.SMOKE_FAILED else active_or_none(rel.target)
    rel.ledger.final("FAILED_NEEDS_ATTENTION", bundle_id=rel.bundle_id, active=now, message=done.message)
    return False
