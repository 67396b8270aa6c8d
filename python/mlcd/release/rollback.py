"""Rollback: re-activate a previous bundle, verify it is active, then re-run the smoke scenarios it has.

:func:`roll_back` never raises an mlcd error: it says how the rollback went
(:class:`mlcd.release.decisions.Rollback`) and the caller records it through the
ledger. The smoke check after a rollback is reported in
``reports/<env>/smoke-after-rollback.xml`` and ``.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcd.errors import ExitCode, MlcdError
from mlcd.release.decisions import Rollback

if TYPE_CHECKING:
    from mlcd.release.session import Release


def rollback_target(entry: dict[str, Any], bundle_id: str, explicit: str | None = None) -> str | None:
    """The bundle to go back to: ``explicit``, else the one recorded before this run's deploy.

    None when there is none (a first deploy, or this run never deployed there),
    or when the recorded one is this very bundle (nothing to go back to).
    """
    if explicit:
        return explicit
    previous = entry.get("previousBundleId")
    if not previous or previous == bundle_id:
        return None
    return str(previous)


class VerificationMismatch(MlcdError):
    """The node does not show the bundle we activated as active."""

    exit_code = ExitCode.ROLLED_BACK
    category = "verification"


def verify_active(rel: Release, expected: str) -> None:
    """Re-read the active bundle (audited); VerificationMismatch (or the node's error) if not ``expected``."""
    with rel.audit.action(
        "verify", node=rel.env.name, environment=rel.env.name, bundle_id=expected
    ) as detail:
        active = rel.target.active_bundle()
        detail["activeBundleId"] = active
        if active != expected:
            raise VerificationMismatch(
                f"the {rel.env.name} node shows bundle {active or '(none)'} active, expected {expected}"
            )


@dataclass
class RollbackDone:
    """How a rollback went: its result, the bundle it went to, a sentence, a fix, its smoke reports."""

    result: Rollback
    target: str | None
    message: str
    hint: str | None = None
    smoke_ran: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)


def roll_back(
    rel: Release,
    target: str | None,
    *,
    from_bundle: str | None,
    reason: str,
    smoke: bool = True,
    explicit: bool = False,
) -> RollbackDone:
    """Re-activate ``target`` and verify it; then (``smoke``) re-run the environment's smoke scenarios.

    ``explicit``: the target was named with ``--to`` (the messages then say so).
    """
    env, project = rel.env, rel.project
    if target is None:
        return RollbackDone(
            Rollback.NO_TARGET,
            None,
            f"there is no previous bundle to roll back to on environment '{env.name}' (first deploy, "
            f"or this run did not change the active bundle); bundle {from_bundle or '?'} stays active",
            f"fix the bundle and deploy again, or `mlcd rollback --env {env.name} --to BUNDLE`",
        )
    rel.progress(f"rolling back to bundle {target} ({reason})")
    by_hand = f"check project {project} on the {env.name} node and activate {target} by hand"
    try:
        with rel.audit.action(
            "rollback",
            detail={"reason": reason, "from": from_bundle},
            node=env.name,
            environment=env.name,
            bundle_id=target,
        ):
            from mlcd.release.envapply import restore_before

            scenarios = restore_before(rel, target)
            rel.target.activate(target, scenarios) if scenarios else rel.target.activate(target)
    except MlcdError as exc:
        return RollbackDone(
            Rollback.FAILED,
            target,
            f"rollback of environment '{env.name}' to bundle {target} failed: {exc.one_line()}; "
            "the environment's active bundle is not verified",
            by_hand,
        )
    try:
        verify_active(rel, target)
    except MlcdError as exc:
        return RollbackDone(
            Rollback.FAILED,
            target,
            f"could not verify the rollback of environment '{env.name}' to {target}: {exc.one_line()}",
            by_hand,
        )
    if not smoke or not env.smoke:
        return RollbackDone(Rollback.VERIFIED, target, f"rolled back to {target} (verified active)")
    return _smoke_after(rel, target, from_bundle=from_bundle, reason=reason, explicit=explicit)


def _smoke_after(
    rel: Release, target: str, *, from_bundle: str | None, reason: str, explicit: bool
) -> RollbackDone:
    from mlcd.testing_gate import write_gate_reports

    env, project = rel.env, rel.project
    try:
        listed = set(rel.target.scenario_ids())
        ran = [s for s in env.smoke if s in listed]
        gate = (
            rel.target.run_scenarios(
                env, ran, rel.audit, rel.progress, kind="smoke-after-rollback", bundle_id=target
            )
            if ran
            else None
        )
    except MlcdError as exc:
        return RollbackDone(
            Rollback.SMOKE_FAILED,
            target,
            f"rolled back {env.name} to {target} (verified active) but its smoke check could not run: "
            f"{exc.one_line()}",
            f"check project {project} on the {env.name} node",
        )
    reports: list[str] = []
    if gate is not None:
        properties = {
            "project": project,
            "environment": env.name,
            "bundleId": target,
            "rollbackOf": from_bundle or "",
            "rollbackReason": reason,
            "node": env.node.url,
        }
        reports = write_gate_reports(rel.out_dir, env.name, "smoke-after-rollback", gate.cases, properties)
        if not gate.passed:
            if explicit:
                hint = f"bundle {target} fails its smoke check: choose another bundle with --to"
            else:
                hint = f"check project {project} on the {env.name} node: the previous bundle is unhealthy too"
            return RollbackDone(
                Rollback.SMOKE_FAILED,
                target,
                f"rolled back {env.name} to {target} (verified active) but its smoke check failed: "
                f"{gate.summary()}",
                hint,
                ran,
                reports,
            )
    note = f"smoke passed ({', '.join(ran)})" if ran else "no smoke scenario to re-run"
    return RollbackDone(
        Rollback.VERIFIED,
        target,
        f"rolled back {env.name} to {target} (verified active; {note})",
        None,
        ran,
        reports,
    )
