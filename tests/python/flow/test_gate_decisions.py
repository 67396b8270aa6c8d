"""Unit tests of the quality-gate decisions: WARNING policy, flaky retries, report cases (plain data)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlcd.dss.waiter import ScenarioResult, StepResult
from mlcd.testing_gate import GateOutcome, RunBatch, build_case, passes, run_gate, should_retry


def scripted(outcomes: dict[str, list[str]]) -> tuple[list[list[str]], RunBatch]:
    """A fake batch runner: scenario id -> outcomes of its successive runs; records each batch."""
    batches: list[list[str]] = []
    iters: dict[str, Iterator[str]] = {k: iter(v) for k, v in outcomes.items()}
    counter = {"n": 0}

    def run_batch(ids: list[str]) -> list[ScenarioResult]:
        batches.append(list(ids))
        out = []
        for sid in ids:
            counter["n"] += 1
            outcome = next(iters[sid])
            timed_out = outcome == "TIMEOUT"
            steps = []
            if outcome == "FAILED":
                steps = [StepResult("s1", "Score", "FAILED", f"{sid} broke", "ValueError")]
            out.append(
                ScenarioResult(
                    sid, f"run-{counter['n']}", "ABORTED" if timed_out else outcome,
                    start=1000, end=3000, steps=steps, log_excerpt=f"log of {sid}", timed_out=timed_out,
                )
            )
        return out

    return batches, run_batch


@pytest.mark.parametrize(
    ("outcome", "policy", "expected"),
    [
        ("SUCCESS", "fail", True),
        ("SUCCESS", "pass", True),
        ("WARNING", "fail", False),
        ("WARNING", "pass", True),
        ("FAILED", "pass", False),
        ("ABORTED", "pass", False),
        ("TIMEOUT", "pass", False),
    ],
)
def test_outcome_counts_per_warning_policy(outcome: str, policy: str, expected: bool) -> None:
    assert passes(outcome, policy) is expected


def test_non_flaky_failure_is_never_retried() -> None:
    batches, run_batch = scripted({"TEST_A": ["FAILED", "SUCCESS"], "TEST_B": ["SUCCESS"]})
    cases = run_gate(run_batch, ["TEST_A", "TEST_B"], {}, "fail")
    assert batches == [["TEST_A", "TEST_B"]]
    a, b = cases
    assert (a.passed, a.outcome, a.flaky_retries, len(a.attempts)) == (False, "FAILED", 0, 1)
    assert a.failing_step == "Score" and a.error_message == "TEST_A broke" and a.run_id == "run-1"
    assert a.log_excerpt == "log of TEST_A"
    assert b.passed and not GateOutcome(cases).passed


def test_flaky_failing_every_attempt_fails_with_every_attempt_reported() -> None:
    batches, run_batch = scripted({"TEST_IO": ["FAILED", "FAILED", "FAILED", "SUCCESS"]})
    [case] = run_gate(run_batch, ["TEST_IO"], {"TEST_IO": 2}, "fail")
    assert batches == [["TEST_IO"], ["TEST_IO"], ["TEST_IO"]]
    assert not case.passed and case.flaky_retries == 2
    assert [a.outcome for a in case.attempts] == ["FAILED", "FAILED", "FAILED"]
    assert [a.run_id for a in case.attempts] == ["run-1", "run-2", "run-3"]


def test_flaky_scenario_passing_on_retry_passes_and_shows_the_retry() -> None:
    batches, run_batch = scripted({"TEST_IO": ["FAILED", "SUCCESS"], "TEST_OK": ["SUCCESS"]})
    cases = run_gate(run_batch, ["TEST_IO", "TEST_OK"], {"TEST_IO": 3}, "fail")
    assert batches == [["TEST_IO", "TEST_OK"], ["TEST_IO"]]
    io = cases[0]
    assert io.passed and io.flaky_retries == 1
    assert [a.outcome for a in io.attempts] == ["FAILED", "SUCCESS"]
    assert "1 flaky retry" in GateOutcome(cases).summary()


def test_warning_fails_under_fail_policy_and_is_not_retried_when_passing() -> None:
    _, run_batch = scripted({"TEST_W": ["WARNING", "WARNING"]})
    [case] = run_gate(run_batch, ["TEST_W"], {"TEST_W": 1}, "fail")
    assert not case.passed and len(case.attempts) == 2
    assert "warning: fail" in (case.error_message or "")
    batches, run_batch = scripted({"TEST_W": ["WARNING"]})
    [case] = run_gate(run_batch, ["TEST_W"], {"TEST_W": 1}, "pass")
    assert case.passed and batches == [["TEST_W"]]


def test_timeout_counts_as_failure() -> None:
    _, run_batch = scripted({"TEST_SLOW": ["TIMEOUT"]})
    [case] = run_gate(run_batch, ["TEST_SLOW"], {}, "pass")
    assert case.outcome == "TIMEOUT" and not case.passed
    assert "deadline" in (case.error_message or "")


def test_should_retry_respects_the_declared_count() -> None:
    assert should_retry("X", "FAILED", 0, {"X": 1}, "fail")
    assert not should_retry("X", "FAILED", 1, {"X": 1}, "fail")
    assert not should_retry("Y", "FAILED", 0, {"X": 1}, "fail")
    assert not should_retry("X", "SUCCESS", 0, {"X": 1}, "fail")


def test_summary_names_the_failing_scenario_step_and_run() -> None:
    _, run_batch = scripted({"TEST_A": ["FAILED"]})
    text = GateOutcome(run_gate(run_batch, ["TEST_A"], {}, "fail")).summary()
    assert "0/1" in text and "TEST_A" in text and "Score" in text and "run-1" in text


def test_build_case_needs_an_attempt() -> None:
    with pytest.raises(ValueError):
        build_case("X", [], "fail")
