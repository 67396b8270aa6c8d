"""Unit tests of the one decision table for "what happens after a failure" (every cell, no node)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mlcd.release.decisions import (
    STATE_OF_RECORD,
    Failed,
    Rollback,
    after_failure,
    cells,
    rolls_back,
    run_exit_code,
    table_markdown,
)

BEFORE, ACT, TESTS, SMOKE, ERR, DOWN = (
    Failed.BEFORE_ACTIVATION,
    Failed.ACTIVATION,
    Failed.TESTS,
    Failed.SMOKE,
    Failed.NODE_ERROR,
    Failed.UNREACHABLE,
)
NOT, NONE, FAIL, SMOKE_BAD, OK = (
    Rollback.NOT_TRIED,
    Rollback.NO_TARGET,
    Rollback.FAILED,
    Rollback.SMOKE_FAILED,
    Rollback.VERIFIED,
)
NEEDS, BACK = "FAILED_NEEDS_ATTENTION", "FAILED_ROLLED_BACK"

# (failed, ours, allowed, rollback) -> (outcome, exit code, audit `deployment` record), written out by hand
EXPECTED = {
    (BEFORE, False, True, NOT): (
        "FAILED",
        8,
        "FAILED_UNCHANGED",
    ),  # nothing activated: the environment stands
    (ACT, True, True, NONE): ("NOTHING_TO_ROLL_BACK", 7, NEEDS),
    (ACT, True, True, FAIL): ("ROLLBACK_FAILED", 5, NEEDS),
    (ACT, True, True, OK): ("ROLLED_BACK", 4, BACK),
    (TESTS, True, True, NONE): ("GATE_FAILED", 3, NEEDS),
    (TESTS, True, True, FAIL): ("ROLLBACK_FAILED", 5, NEEDS),
    (TESTS, True, True, SMOKE_BAD): ("ROLLBACK_FAILED", 5, NEEDS),
    (TESTS, True, True, OK): ("ROLLED_BACK", 3, BACK),
    (TESTS, True, False, NOT): ("GATE_FAILED", 3, NEEDS),
    (TESTS, False, True, NOT): ("GATE_FAILED", 3, None),
    (TESTS, False, False, NOT): ("GATE_FAILED", 3, None),
    (SMOKE, True, True, NONE): ("NOTHING_TO_ROLL_BACK", 7, NEEDS),
    (SMOKE, True, True, FAIL): ("ROLLBACK_FAILED", 5, NEEDS),
    (SMOKE, True, True, SMOKE_BAD): ("ROLLBACK_FAILED", 5, NEEDS),
    (SMOKE, True, True, OK): ("ROLLED_BACK", 4, BACK),
    (SMOKE, True, False, NOT): ("GATE_FAILED", 3, NEEDS),
    (SMOKE, False, True, NOT): ("GATE_FAILED", 3, None),
    (SMOKE, False, False, NOT): ("GATE_FAILED", 3, None),
    (ERR, True, True, NONE): ("NOTHING_TO_ROLL_BACK", 7, NEEDS),
    (ERR, True, True, FAIL): ("ROLLBACK_FAILED", 5, NEEDS),
    (ERR, True, True, SMOKE_BAD): ("ROLLBACK_FAILED", 5, NEEDS),
    (ERR, True, True, OK): ("ROLLED_BACK", 4, BACK),
    (ERR, True, False, NOT): ("FAILED", 5, NEEDS),
    (ERR, False, True, NOT): ("FAILED", None, None),
    (ERR, False, False, NOT): ("FAILED", None, None),
    (DOWN, True, True, NOT): ("ROLLBACK_FAILED", 5, NEEDS),
    (DOWN, True, False, NOT): ("ROLLBACK_FAILED", 5, NEEDS),
    (DOWN, False, True, NOT): ("FAILED", None, None),
    (DOWN, False, False, NOT): ("FAILED", None, None),
}


def test_the_cells_are_exactly_the_reachable_combinations() -> None:
    assert set(cells()) == set(EXPECTED)


@pytest.mark.parametrize(
    "cell", list(EXPECTED), ids=lambda c: "-".join(str(getattr(x, "value", x)) for x in c)
)
def test_every_cell(cell: tuple[Failed, bool, bool, Rollback]) -> None:
    d = after_failure(*cell)
    assert (d.outcome, d.exit_code, d.record) == EXPECTED[cell]


@pytest.mark.parametrize(
    ("failed", "ours", "allowed", "rollback"),
    list(itertools.product(Failed, (True, False), (True, False), Rollback)),
)
def test_every_combination_keeps_the_record_and_the_state_together(
    failed: Failed, ours: bool, allowed: bool, rollback: Rollback
) -> None:
    d = after_failure(failed, ours, allowed, rollback)
    # the run.json state is derived from the audit record: they cannot disagree
    assert d.state == (STATE_OF_RECORD[d.record] if d.record else None)
    assert d.record != "SUCCEEDED" and d.exit_code != 0
    if d.record == BACK:
        assert rollback is Rollback.VERIFIED and d.exit_code in (3, 4)
    if rollback in (Rollback.FAILED, Rollback.SMOKE_FAILED) and rolls_back(failed, ours, allowed):
        assert (d.record, d.exit_code) == (NEEDS, 5)  # a rollback that did not end verified needs a person
    if not rolls_back(failed, ours, allowed):
        # what the rollback "did" cannot matter when none was tried
        assert d == after_failure(failed, ours, allowed, Rollback.NOT_TRIED)
        # without a rollback: nothing recorded, this run's bundle kept, or nothing activated (unchanged)
        assert (
            d.record is None
            or d.kept
            or (failed is Failed.BEFORE_ACTIVATION and d.record == "FAILED_UNCHANGED")
        )


def test_a_failed_activation_is_always_rolled_back() -> None:
    for ours, allowed in itertools.product((True, False), repeat=2):
        assert rolls_back(Failed.ACTIVATION, ours, allowed)
        assert after_failure(Failed.ACTIVATION, ours, allowed, Rollback.VERIFIED).exit_code == 4


def test_the_docs_hold_the_generated_table() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "decisions.md").read_text(encoding="utf-8")
    assert table_markdown() in doc, "regenerate docs/decisions.md: python -m mlcd.release.decisions"


@pytest.mark.parametrize(
    ("failed", "unwinds", "expected"),
    [
        (4, [], 4),
        (3, [0, 0], 3),
        (4, [0, 5], 5),  # an earlier environment left needing a person outranks the later failure
        (3, [6], 5),  # an unwind that could not reach its node did not end either
        (0, [], 0),
    ],
)
def test_the_run_exit_code_after_unwinding_earlier_environments(
    failed: int, unwinds: list[int], expected: int
) -> None:
    assert run_exit_code(failed, unwinds) == expected
