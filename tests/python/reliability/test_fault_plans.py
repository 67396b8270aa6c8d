"""Fault plans aimed at the dangerous cases: the node does the work, then the answer is lost.

Each plan loses the answers of one kind of request that changes a node (activation,
bundle import, scenario trigger, preload) after the node has handled it, as when a
proxy gives up on a slow backend (``"after": true`` in the stand-in's fault plan);
two more refuse a rollback's activation and every import. Smoke fails in about a
third of the runs, so rollbacks are reached too. Every run is checked on the nodes
like the random faults of ``test_faults.py`` (verified and recorded, no blind retry),
and the exit code and end states of each plan go to the summary table that
``scripts/reliability.py`` prints. Seeds are new on every run and printed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_faults import REPLAY, RunReport, ensure_baseline, faulted_run, fresh_seeds

from support.reltools import fast_pipeline, record_result

READ_TIMEOUT = 1.5
LOST = {"status": 502, "after": True}  # the work is done, the answer is a gateway error


def _lost(path: str, rate: float) -> Callable[[int, int], dict[str, Any]]:
    def plan(seed: int, node_index: int) -> dict[str, Any]:
        rules = [] if node_index == 0 else [{"method": "POST", "path": path, "rate": rate, **LOST}]
        return {"seed": seed * 100 + node_index, "rules": rules}

    return plan


def _rollback_refused(seed: int, node_index: int) -> dict[str, Any]:
    """The deploy's activation answer is lost (it happened); the rollback's activation is refused."""
    rules: list[dict[str, Any]] = []
    if node_index == 1:  # test
        rules = [
            {"method": "POST", "path": "actions/activate$", "times": 1, **LOST},
            {"method": "POST", "path": "actions/activate$", "status": 500},
        ]
    return {"seed": seed * 100 + node_index, "rules": rules}


def _import_refused(seed: int, node_index: int) -> dict[str, Any]:
    rules = [] if node_index != 1 else [{"method": "POST", "path": "importFromStream", "status": 500}]
    return {"seed": seed * 100 + node_index, "rules": rules}


# plan name -> (fault plan, share of runs whose smoke fails)
PLANS: dict[str, tuple[Callable[[int, int], dict[str, Any]], float]] = {
    "activation-answer-lost": (_lost("actions/activate$", 0.6), 0.35),
    "import-answer-lost": (_lost("importFromStream|projectsFromBundle", 0.6), 0.35),
    "trigger-answer-lost": (_lost("/scenarios/[^/]+/run$", 0.5), 0.35),
    "preload-answer-lost": (_lost("actions/preload$", 0.6), 0.35),
    "rollback-refused": (_rollback_refused, 1.0),
    "import-refused": (_import_refused, 0.0),
}


def run_plan(root: Path, name: str, seeds: list[int]) -> list[RunReport]:
    """The plan's runs one after the other on one pipeline; each result recorded for the table."""
    plan, smoke_share = PLANS[name]
    reports = []
    counter = [0]
    with fast_pipeline(root, read_timeout=READ_TIMEOUT) as pipe:
        for seed in seeds:
            ensure_baseline(pipe, counter)
            fail_smoke = random.Random(seed).random() < smoke_share
            report = faulted_run(pipe, seed, plan, fail_smoke=fail_smoke)
            reports.append(report)
            smoke = "fails" if fail_smoke else "passes"
            print(f"{name} seed {seed} (smoke {smoke}): exit {report.exit_code}, {report.faults} answers "
                  f"lost/refused, states {report.states}, audit {report.outcomes}")  # fmt: skip
            record_result(
                "fault_plans", plan=name, seed=seed, exit=report.exit_code, faults=report.faults,
                states=report.states, outcomes=report.outcomes, violations=len(report.violations),
                smoke_fails=fail_smoke,
            )  # fmt: skip
    failing = [r for r in reports if r.violations]
    assert not failing, "\n".join(
        f"{name} seed {r.seed} (replay: MLCD_FAULT_SEEDS={r.seed} ... -k '{name}'; random plan: "
        f"{REPLAY.format(seed=r.seed)}): " + "; ".join(r.violations)
        for r in failing
    )
    return reports


@pytest.mark.reliability
def test_activation_answer_lost_once(tmp_path: Path) -> None:
    """One run whose activation answers are lost (the fast subset has the deterministic case below)."""
    [report] = run_plan(tmp_path / "pipe", "activation-answer-lost", fresh_seeds(1))
    assert report.faults >= 0


def test_a_refused_rollback_after_a_lost_activation_answer_needs_attention(tmp_path: Path) -> None:
    """Deterministic (the fast subset): the activation happened, its answer was lost, smoke fails, the
    rollback is refused: exit 5 and the record says so."""
    [report] = run_plan(tmp_path / "pipe", "rollback-refused", fresh_seeds(1))
    assert report.exit_code == 5, report
    assert report.outcomes["test"] == "FAILED_NEEDS_ATTENTION" and report.states["test"] == "NEW"
    assert report.outcomes["prod"] is None and report.states["prod"] == "PREVIOUS"  # never reached


@pytest.mark.reliability
@pytest.mark.parametrize("name", sorted(PLANS))
def test_fault_plan(tmp_path: Path, name: str) -> None:
    """Four runs of each plan; the exit codes and end states reached go to the summary table."""
    reports = run_plan(tmp_path / name, name, fresh_seeds(4))
    exits = Counter(r.exit_code for r in reports)
    print(f"{name}: exit codes {dict(sorted(exits.items()))}")
    assert len(reports) == 4
