"""The one decision table for "what happens after a failure" on an environment.

Inputs: which step failed (:class:`Failed`), whether the active bundle was put
there by this run (``ours``), whether a rollback is allowed, and how the
rollback went (:class:`Rollback`, including the smoke check after it).
Outputs (:class:`Decision`): the command's outcome and exit code, the audit
``deployment`` record's outcome, and the environment's state in ``run.json``
(the ledger writes both from the same decision, so they cannot disagree).

Two calls, one table: :func:`rolls_back` says whether to try a rollback at all;
:func:`after_failure` gives the result once the rollback (if any) is done.
``docs/decisions.md`` is generated from :func:`table_markdown`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum

from mlcd.errors import ExitCode


class Failed(str, Enum):
    """The step that failed on a bundle this run activated (or tried to)."""

    BEFORE_ACTIVATION = "before-activation"  # a step before activation (import, remappings, preload) failed
    ACTIVATION = "activation"  # activation or its verification failed, or was interrupted
    TESTS = "tests"  # the test gate did not pass
    SMOKE = "smoke"  # the smoke gate did not pass
    NODE_ERROR = "node-error"  # a gate could not complete: the node answered with an error
    UNREACHABLE = "unreachable"  # a gate could not complete: the node cannot be reached


class Rollback(str, Enum):
    """How the rollback went (NOT_TRIED when :func:`rolls_back` said no)."""

    NOT_TRIED = "not tried"
    NO_TARGET = "no previous bundle"
    FAILED = "failed"  # activation or verification of the previous bundle failed
    SMOKE_FAILED = "verified, smoke after it failed"
    VERIFIED = "verified (smoke after it passed, where run)"


# run.json environments.<env>.state values
STATE_DEPLOYING = "DEPLOYING"
STATE_DEPLOYED = "DEPLOYED"
STATE_UNCHANGED = "UNCHANGED"
STATE_ROLLED_BACK = "ROLLED_BACK"
STATE_NEEDS_ATTENTION = "NEEDS_ATTENTION"

# audit `deployment` outcome -> run.json state (the ledger's one mapping)
STATE_OF_RECORD = {
    "SUCCEEDED": STATE_DEPLOYED,
    "FAILED_ROLLED_BACK": STATE_ROLLED_BACK,
    "FAILED_UNCHANGED": STATE_UNCHANGED,
    "FAILED_NEEDS_ATTENTION": STATE_NEEDS_ATTENTION,
}


@dataclass(frozen=True)
class Decision:
    """What a failure ends as.

    ``exit_code`` None: the error's own exit code (nothing of this run's changed, the
    error is re-raised). ``record`` None: no audit ``deployment`` record and no
    run.json state change.
    """

    outcome: str  # the stage file's outcome
    exit_code: int | None
    record: str | None  # audit `deployment` outcome
    kept: bool = False  # this run's bundle stays active, unchecked (no rollback tried)

    @property
    def state(self) -> str | None:
        """The environment's run.json state that goes with the audit record."""
        return STATE_OF_RECORD[self.record] if self.record else None


def rolls_back(failed: Failed, ours: bool, allowed: bool) -> bool:
    """Whether to try a rollback: a failed activation always is; a gate only on ours when allowed."""
    if failed is Failed.ACTIVATION:
        return True
    if failed in (Failed.UNREACHABLE, Failed.BEFORE_ACTIVATION):
        return False  # the node cannot be reached to roll it back
    return ours and allowed


_GATE_EXIT = {Failed.TESTS: ExitCode.GATE_FAILED}  # a failed test gate keeps exit 3 whatever follows
NEEDS = "FAILED_NEEDS_ATTENTION"


def after_failure(failed: Failed, ours: bool, allowed: bool, rollback: Rollback) -> Decision:
    """The decision for one cell of the table (see the module docstring)."""
    if failed is Failed.ACTIVATION:
        ours = True  # the activation was this run's
    if failed is Failed.BEFORE_ACTIVATION:  # nothing was activated: the active bundle (or none) stays
        return Decision("FAILED", int(ExitCode.DEPLOY_FAILED), "FAILED_UNCHANGED")
    if not rolls_back(failed, ours, allowed):
        return _not_rolled_back(failed, ours)
    gate_exit = _GATE_EXIT.get(failed)
    if rollback is Rollback.VERIFIED:
        return Decision("ROLLED_BACK", int(gate_exit or ExitCode.ROLLED_BACK), "FAILED_ROLLED_BACK")
    if rollback is Rollback.NO_TARGET:
        if gate_exit is not None:
            return Decision("GATE_FAILED", int(gate_exit), NEEDS)
        return Decision("NOTHING_TO_ROLL_BACK", int(ExitCode.NOTHING_TO_ROLL_BACK), NEEDS)
    # FAILED, SMOKE_FAILED (and NOT_TRIED, which a caller that asked rolls_back never passes)
    return Decision("ROLLBACK_FAILED", int(ExitCode.ROLLBACK_FAILED), NEEDS)


def _not_rolled_back(failed: Failed, ours: bool) -> Decision:
    if failed in (Failed.TESTS, Failed.SMOKE):
        return Decision("GATE_FAILED", int(ExitCode.GATE_FAILED), NEEDS if ours else None, kept=ours)
    if not ours:
        return Decision("FAILED", None, None)  # nothing of ours changed: the error stands as it is
    if failed is Failed.UNREACHABLE:
        return Decision("ROLLBACK_FAILED", int(ExitCode.ROLLBACK_FAILED), NEEDS, kept=True)
    return Decision("FAILED", int(ExitCode.ROLLBACK_FAILED), NEEDS, kept=True)


def run_exit_code(failed: int, unwind_exits: list[int]) -> int:
    """`mlcd run`'s exit code: the failing environment's, or 5 when unwinding an earlier one did not end.

    ``unwind_exits``: the exit code of `mlcd unwind` for each earlier environment. An
    unwind that failed (its rollback, the smoke check after it, or the unwind itself)
    leaves that environment needing a person, which outranks the later failure.
    """
    if failed and any(unwind_exits):
        return int(ExitCode.ROLLBACK_FAILED)
    return failed


def cells() -> list[tuple[Failed, bool, bool, Rollback]]:
    """Every combination of the inputs (the rollback result only where a rollback is tried)."""
    out = []
    for failed, ours, allowed in itertools.product(Failed, (True, False), (True, False)):
        if failed is Failed.ACTIVATION and (not ours or not allowed):
            continue  # an activation is always this run's and always rolled back
        if failed is Failed.BEFORE_ACTIVATION and (ours or not allowed):
            continue  # nothing of this run is active yet, and nothing is rolled back
        tries = rolls_back(failed, ours, allowed)
        for rollback in Rollback:
            if tries == (rollback is not Rollback.NOT_TRIED):
                if failed is Failed.ACTIVATION and rollback is Rollback.SMOKE_FAILED:
                    continue  # after a failed activation the rollback is verified without smoke
                out.append((failed, ours, allowed, rollback))
    return out


def table_markdown() -> str:
    """The decision table as a markdown table (docs/decisions.md)."""
    lines = [
        "| failed step | this run's bundle active | rollback allowed | rollback | outcome | exit "
        "| audit `deployment` | run.json state |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for failed, ours, allowed, rollback in cells():
        d = after_failure(failed, ours, allowed, rollback)
        yes = {True: "yes", False: "no"}
        exit_text = str(d.exit_code) if d.exit_code is not None else "the error's own"
        ours_text = {Failed.ACTIVATION: "yes (always)", Failed.BEFORE_ACTIVATION: "no (always)"}.get(
            failed, yes[ours]
        )
        allowed_text = {Failed.ACTIVATION: "yes (always)", Failed.BEFORE_ACTIVATION: "(not asked)"}.get(
            failed, yes[allowed]
        )
        lines.append(
            f"| {failed.value} | {ours_text} | {allowed_text} | {rollback.value} | {d.outcome} | {exit_text} "
            f"| {d.record or '(none)'} | {d.state or '(unchanged)'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - prints the table for docs/decisions.md
    print(table_markdown(), end="")
