"""Fault plans aimed at the dangerous cases: the node does the work, then the answer is lost.

Each plan loses the answers of one kind of request that changes a node (activation,
bundle import, scenario trigger, preload) after the node has handled it, as when a
proxy gives up on a slow backend (``"after": true`` in the stand-in's fault plan);
two more refuse a rollback's activation and every import, and one starts from a first deploy
(no project on the nodes: nothing to roll back to, exit 7). Smoke fails in about a
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

from support.pipeline_env import PipelineEnv
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


def _first_deploy(seed: int, node_index: int) -> dict[str, Any]:
    """A first deploy (no project on the nodes): odd seeds refuse test's activation, even ones pass it
    (and smoke fails): either way there is nothing to roll back to (exit 7)."""
    rules: list[dict[str, Any]] = []
    if node_index == 1 and seed % 2:
        rules = [{"method": "POST", "path": "actions/activate$", "status": 500, "times": 1}]
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
    "first-deploy": (_first_deploy, 1.0),
}
FIRST_DEPLOY = "first-deploy"  # each of its runs on fresh nodes, without the project


def plan_run(pipe: PipelineEnv, name: str, seed: int) -> RunReport:
    """One faulted run of plan ``name``, printed and recorded for the table."""
    plan, smoke_share = PLANS[name]
    fail_smoke = random.Random(seed).random() < smoke_share
    report = faulted_run(pipe, seed, plan, fail_smoke=fail_smoke)
    smoke = "fails" if fail_smoke else "passes"
    print(f"{name} seed {seed} (smoke {smoke}): exit {report.exit_code}, {report.faults} answers "
          f"lost/refused, states {report.states}, audit {report.outcomes}")  # fmt: skip
    record_result(
        "fault_plans", plan=name, seed=seed, exit=report.exit_code, faults=report.faults,
        states=report.states, outcomes=report.outcomes, violations=len(report.violations),
        smoke_fails=fail_smoke,
    )  # fmt: skip
    return report


def run_plan(root: Path, name: str, seeds: list[int]) -> list[RunReport]:
    """The plan's runs one after the other on one pipeline (fresh ones for a first deploy); each recorded."""
    reports = []
    counter = [0]
    if name == FIRST_DEPLOY:
        for seed in seeds:
            with fast_pipeline(root / str(seed), read_timeout=READ_TIMEOUT) as pipe:
                reports.append(plan_run(pipe, name, seed))
    else:
        with fast_pipeline(root, read_timeout=READ_TIMEOUT) as pipe:
            for seed in seeds:
                ensure_baseline(pipe, counter)
                reports.append(plan_run(pipe, name, seed))
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
    if name == FIRST_DEPLOY:  # nothing to roll back to: needs attention, said so
        assert exits == Counter({7: 4}), exits
        assert all(r.outcomes["test"] == "FAILED_NEEDS_ATTENTION" for r in reports), reports
