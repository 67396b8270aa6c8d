"""After a failure on an environment: roll back when the decision table says so, and record the end.

:func:`settle` is the one place that applies :mod:`mlcd.release.decisions`: it
asks whether to roll back, rolls back through :func:`mlcd.release.rollback.roll_back`,
takes the table's decision and writes it through the ledger. It returns a
:class:`Settled` the command layer turns into its result; it prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlcd.errors import ExitCode, MlcdError, error_for
from mlcd.release.decisions import Decision, Failed, Rollback, after_failure, rolls_back
from mlcd.release.rollback import RollbackDone, roll_back, rollback_target
from mlcd.release.target import active_or_none

if TYPE_CHECKING:
    from mlcd.release.session import Release


@dataclass
class Settled:
    """How a failure ended: the decision, one sentence, a fix, where the environment went back to."""

    decision: Decision
    message: str
    hint: str | None
    rolled_back_to: str | None = None
    reports: list[str] = field(default_factory=list)

    def error(self, fallback: MlcdError | None = None) -> MlcdError:
        """The error the command ends with (recorded: its audit ``deployment`` record is written)."""
        d = self.decision
        if d.exit_code is None and fallback is not None:
            return fallback
        err = error_for(d.outcome, ExitCode(d.exit_code or ExitCode.ROLLBACK_FAILED), self.message, self.hint)
        err.recorded = True
        err.details = {"reports": list(self.reports)}
        if self.rolled_back_to:
            err.details["rolledBackTo"] = self.rolled_back_to
        return err


def settle(
    rel: Release,
    failed: Failed,
    cause: str,
    hint: str | None,
    *,
    allowed: bool,
    reason: str | None = None,
    previous: str | None = None,
    gate: str = "tests",
) -> Settled:
    """End a failure of ``failed`` on ``rel``'s environment (see the module docstring).

    ``previous``: for a failed activation, the bundle active before it (the rollback target);
    ``gate``: the gate (tests | smoke) that was running, named in the fix of a node error.
    """
    bid = rel.bundle_id
    ours = failed is Failed.ACTIVATION or rel.ledger.ours()
    done: RollbackDone | None = None
    if rolls_back(failed, ours, allowed):
        target = previous if failed is Failed.ACTIVATION else rollback_target(rel.ledger.entry, bid or "")
        if target == bid:
            target = None
        with rel.lock():
            done = roll_back(
                rel,
                target,
                from_bundle=bid,
                reason=reason or cause.split(":")[0],
                smoke=failed is not Failed.ACTIVATION,
            )
    decision = after_failure(failed, ours, allowed, done.result if done else Rollback.NOT_TRIED)
    message, fix = _describe(rel, failed, decision, cause, hint, done, gate)
    if decision.record is not None:
        rel.ledger.final(
            decision.record, bundle_id=bid, active=_active_after(rel, failed, decision, done), message=message
        )
    rolled_to = done.target if done and done.result in (Rollback.VERIFIED, Rollback.SMOKE_FAILED) else None
    return Settled(decision, message, fix, rolled_to, list(done.reports) if done else [])


def _active_after(rel: Release, failed: Failed, decision: Decision, done: RollbackDone | None) -> str | None:
    if decision.kept:
        return None if failed is Failed.UNREACHABLE else rel.bundle_id
    if done is not None and done.result in (Rollback.VERIFIED, Rollback.SMOKE_FAILED):
        return done.target
    return active_or_none(rel.target)


def _describe(
    rel: Release,
    failed: Failed,
    decision: Decision,
    cause: str,
    hint: str | None,
    done: RollbackDone | None,
    gate: str,
) -> tuple[str, str | None]:
    """The one sentence and the fix of a settled failure."""
    name, bid = rel.env.name, rel.bundle_id
    if done is not None:
        if done.result is Rollback.VERIFIED:
            fix = (
                "look at the failure above, fix the bundle and deploy again"
                if failed is Failed.ACTIVATION
                else (hint if failed in (Failed.TESTS, Failed.SMOKE) else "check the node, then deploy again")
            )
            return f"{cause}; {done.message}", fix
        return f"{cause}; {done.message}", done.hint
    if not decision.kept:
        return cause, hint
    again = f"`mlcd {'smoke' if gate == 'smoke' else 'test'} --env {name}`"
    if failed in (Failed.TESTS, Failed.SMOKE):
        return f"{cause}; not rolled back (rollback disabled): {bid} stays active", hint
    note = f"{cause}; bundle {bid} stays active, not checked"
    if failed is Failed.UNREACHABLE:
        return (
            f"{note}: the {name} node cannot be reached to roll it back",
            f"when the node answers again, run {again} or `mlcd rollback --env {name}`",
        )
    return f"{note} (rollback disabled)", f"run {again} again, or `mlcd rollback --env {name}`"
