"""What a test or smoke gate reports per scenario: the cases the JUnit and HTML reports are made of."""

from __future__ import annotations

from dataclasses import dataclass, field

OUTCOMES = ("SUCCESS", "WARNING", "FAILED", "ABORTED", "TIMEOUT")


@dataclass
class Attempt:
    """One run of a scenario (there are several when a flaky scenario is retried)."""

    run_id: str | None
    outcome: str
    duration_s: float
    failing_step: str | None
    error_message: str | None


@dataclass
class CaseResult:
    """The result of one scenario (or one check) as reported."""

    scenario_id: str
    outcome: str  # SUCCESS | WARNING | FAILED | ABORTED | TIMEOUT
    passed: bool
    duration_s: float
    run_id: str | None
    failing_step: str | None
    error_type: str | None
    error_message: str | None
    log_excerpt: str
    attempts: list[Attempt] = field(default_factory=list)
    flaky_retries: int = 0
