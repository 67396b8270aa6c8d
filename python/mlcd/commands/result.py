"""What a command reports, and how an error becomes a result with its documented exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlcd.errors import ExitCode, MlcdError
from mlcd.redact import redact

OUTCOME_BY_CATEGORY = {
    "gate": "GATE_FAILED",
    "rolled_back": "ROLLED_BACK",
    "rollback_failed": "ROLLBACK_FAILED",
    "nothing_to_roll_back": "NOTHING_TO_ROLL_BACK",
}



@dataclass
class StageResult:
    """What a command reports: written to its stage file and summarised on stdout."""

    # SUCCESS | NOOP | FAILED | GATE_FAILED | ROLLED_BACK | ROLLBACK_FAILED | NOTHING_TO_ROLL_BACK
    outcome: str
    message: str
    exit_code: int = int(ExitCode.OK)
    bundle_id: str | None = None
    reports: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error_category: str | None = None


def exit_code_of(exc: MlcdError) -> int:
    """The exit code an error ends a command with (a bare MlcdError is bad usage, not a bug)."""
    return int(ExitCode.BAD_INPUT) if type(exc) is MlcdError else int(exc.exit_code)


def result_of_error(exc: MlcdError) -> StageResult:
    """The failed result of a command that ended with ``exc`` (its details and reports kept)."""
    details = dict(exc.details or {})
    return StageResult(
        outcome=OUTCOME_BY_CATEGORY.get(exc.category, "FAILED"),
        message=redact(exc.one_line()),
        exit_code=exit_code_of(exc),
        error_category=exc.category,
        details=details,
        bundle_id=getattr(exc, "bundle_id", None),
        reports=[str(r) for r in details.get("reports", [])],
    )
