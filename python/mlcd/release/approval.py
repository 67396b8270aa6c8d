"""Approvals: an environment needing approval gets nothing without an approval of these exact bytes.

:func:`approval_problem` is the single entry point that decides whether a run
record's approval covers a bundle; everything that needs the answer asks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcd.errors import InputError

if TYPE_CHECKING:
    from mlcd.config import EnvironmentConfig
    from mlcd.runrecord import RunRecord


def approval_of(entry: dict[str, Any]) -> tuple[str | None, str | None]:
    """(approver, approved sha256) recorded in a run record environment entry."""
    approval = entry.get("approval")
    if isinstance(approval, dict):
        who = approval.get("approvedBy") or approval.get("approver") or entry.get("approvedBy")
        sha = approval.get("sha256") or entry.get("approvedSha256")
    else:
        who, sha = entry.get("approvedBy"), entry.get("approvedSha256")
    return (str(who) if who else None, str(sha) if sha else None)


def approval_problem(entry: dict[str, Any], env_name: str, sha256: str) -> str | None:
    """Why the run record's approval does not cover this bundle on ``env_name`` (None when it does)."""
    who, sha = approval_of(entry)
    if not who:
        return f"environment '{env_name}' needs an approval and this run has none"
    from mlcd.signing import verify_approval  # only the approval step can sign one

    forged = verify_approval(entry, env_name, sha256)
    if forged:
        return forged
    if sha != sha256:
        return (
            f"the approval of environment '{env_name}' by {who} is for other bundle bytes "
            f"(sha256 {str(sha)[:12]}…), not this bundle ({sha256[:12]}…)"
        )
    return None


def require_approval(record: RunRecord, env: EnvironmentConfig) -> str | None:
    """Raise InputError (exit 2) when ``env`` needs an approval this run lacks; return the approver."""
    if not env.approval:
        return None
    problem = approval_problem(record.env(env.name), env.name, record.sha256)
    if problem:
        raise InputError(
            f"{problem}; nothing was deployed",
            f"run `mlcd approve --env {env.name} --approver NAME` (or `mlcd run --approve {env.name}`)",
        )
    return approval_of(record.env(env.name))[0]
