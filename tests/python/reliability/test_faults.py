"""Faults: the whole flow (`mlcd run` over test and prod, the real CLI) under seeded random faults.

Every node answers about 10% of requests with a fault (503/429/502, connection
resets, answers slowed past the client's read timeout, archive downloads and
bundle uploads cut mid-body). After each run the nodes themselves are checked:
each environment is on the new bundle or on the previous one, verified by its
content (``model_version`` of the active bundle) and by running its smoke scenario
directly, and the exit code and the audit ``deployment`` records say which. No
scenario run may be started more often than mlcd says it started one (no blind
retry of a trigger). A failing seed is printed with the command to replay it.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from support.pipeline_env import PipelineEnv
from support.reltools import (
    bundle_tag,
    fast_pipeline,
    reader,
    record_result,
    smoke_passes,
)

ENVS = ("test", "prod")
SCENARIOS = ("TEST_PASS", "TEST_FAIL_ON_VAR", "TEST_SMOKE")
READ_TIMEOUT = 1.5
FAST_RUNS = 2
FULL_RUNS = 50
REPLAY = "MLCD_FAULT_SEEDS={seed} .venv/bin/pytest tests/python/reliability/test_faults.py -m reliability"


def fresh_seeds(count: int) -> list[int]:
    """``count`` seeds new for each run of the suite (or ``MLCD_FAULT_SEEDS``), printed so they replay."""
    override = os.environ.get("MLCD_FAULT_SEEDS")
    if override:
        return [int(s) for s in override.split(",")]
    start = random.SystemRandom().randrange(1, 10**6)
    seeds = list(range(start, start + count))
    print(f"fault seeds this run: {seeds[0]}..{seeds[-1]} (replay one: {REPLAY.format(seed=seeds[0])})")
    return seeds


def fault_plan(seed: int, node_index: int) -> dict[str, Any]:
    """About 10% of a node's requests fail, in every way the issue lists; deterministic per seed."""
    rng = random.Random(seed * 31 + node_index)
    return {
        "seed": seed * 100 + node_index,
        "rules": [
            # transfers: downloads cut mid-body, uploads cut by a reset while the client sends
            {"method": "GET", "path": "/archive$", "rate": 0.3, "drop_after": rng.choice([512, 2048, 8192])},
            {"method": "POST", "path": "importFromStream|projectsFromBundle", "rate": 0.25, "reset": True},
            # everything else: ~10% in total
            {"rate": 0.03, "status": 503},
            {"rate": 0.02, "status": 429},
            {"rate": 0.01, "status": rng.choice([502, 504])},
            {"rate": 0.02, "reset": True},
            # answers slowed past the read timeout (scenario triggers included: a late trigger is
            # waited for, never sent twice; see test_a_trigger_answered_late_starts_the_scenario_once)
            {"rate": 0.02, "latency": READ_TIMEOUT + 0.7},
        ],
    }


@dataclass
class RunReport:
    """What one faulted run did, as seen on the nodes."""

    seed: int
    exit_code: int
    faults: int
    requests: int
    states: dict[str, str] = field(default_factory=dict)  # env -> NEW | PREVIOUS | OTHER
    outcomes: dict[str, str | None] = field(default_factory=dict)  # env -> last deployment outcome
    violations: list[str] = field(default_factory=list)
    fail_smoke: bool = False  # the new bundle's smoke scenario fails by design


def scenario_runs(pipe: PipelineEnv, env: str) -> dict[str, set[str]]:
    """Run ids on the node, per scenario."""
    r = reader(pipe, env)
    try:
        if r.active(pipe.project_key) is None:
            return {sid: set() for sid in SCENARIOS}
        return {sid: {str(x["runId"]) for x in r.runs(pipe.project_key, sid)} for sid in SCENARIOS}
    finally:
        r.close()


def ensure_baseline(pipe: PipelineEnv, counter: list[int]) -> None:
    """Both environments on a verified bundle (a fault-free `mlcd run` when not)."""
    for node in pipe.nodes():
        node.clear_faults()
    if all(bundle_tag(pipe, env) is not None for env in ENVS):
        return
    counter[0] += 1
    pipe.set_design_variables(model_version=f"base{counter[0]}", fail_smoke=False)
    proc = pipe.mlcd("run", "--build-number", f"base{counter[0]}", timeout=300)
    assert proc.returncode == 0, f"fault-free baseline run failed: {proc.stdout[-2000:]}{proc.stderr}"


def faulted_run(
    pipe: PipelineEnv,
    seed: int,
    plan: Callable[[int, int], dict[str, Any]] = fault_plan,
    fail_smoke: bool = False,
) -> RunReport:
    """One `mlcd run` under ``plan(seed, node)`` (smoke failing when asked), then the checks on the nodes."""
    before = {env: (reader(pipe, env).active(pipe.project_key), bundle_tag(pipe, env)) for env in ENVS}
    old_record = pipe.run_record().get("bundleId") if (pipe.out_dir / "run.json").exists() else None
    runs_before = {env: scenario_runs(pipe, env) for env in ENVS}
    audit_start = len(pipe.audit_records())
    tag = f"s{seed}"
    pipe.set_design_variables(model_version=tag, fail_smoke=fail_smoke)
    for i, node in enumerate(pipe.nodes()):
        node.reset_stats()
        node.set_faults(plan(seed, i))
    try:
        proc = pipe.mlcd("run", "--build-number", str(seed), timeout=600)
    finally:
        fired = 0
        total = 0
        for node in pipe.nodes():
            plan = requests.get(node.url + "/__sim__/faults", auth=(node.api_key, ""), timeout=10).json()
            fired += sum(int(r["fired"]) for r in plan["rules"])
            total += int(node.stats()["total"])
            node.clear_faults()
    report = RunReport(
        seed=seed, exit_code=proc.returncode, faults=fired, requests=total, fail_smoke=fail_smoke
    )
    out = proc.stdout + proc.stderr
    if "Traceback" in out:
        report.violations.append("a traceback reached the user")
    if proc.returncode in (1, 2):
        tail = proc.stderr.strip()[-300:]
        report.violations.append(f"exit {proc.returncode} under transient faults: {tail}")
    record = pipe.run_record() if (pipe.out_dir / "run.json").exists() else {}
    new = record.get("bundleId") if record.get("bundleId") != old_record else None
    audit = pipe.audit_records()[audit_start:]
    for env in ENVS:
        check_environment(pipe, env, new, tag, before[env], audit, runs_before[env], report)
    outcomes = [o for o in report.outcomes.values() if o]
    if proc.returncode == 0:
        if report.states != {e: "NEW" for e in ENVS} or outcomes != ["SUCCEEDED"] * len(ENVS):
            report.violations.append(f"exit 0 but states {report.states}, outcomes {report.outcomes}")
    else:
        if all(report.states.get(e) == "NEW" for e in ENVS) and outcomes == ["SUCCEEDED"] * len(ENVS):
            report.violations.append(f"exit {proc.returncode} although both environments succeeded")
        needs = {4: "FAILED_ROLLED_BACK", 5: "FAILED_NEEDS_ATTENTION", 7: "FAILED_NEEDS_ATTENTION",
                 8: "FAILED_UNCHANGED"}.get(proc.returncode)  # fmt: skip
        if needs and needs not in outcomes:
            report.violations.append(f"exit {proc.returncode} without a {needs} deployment record")
    prod_touched = report.outcomes.get("prod") or report.states.get("prod") == "NEW"
    # prod comes after test succeeded (test may be unwound later, when prod fails)
    test_succeeded = any(
        a["operation"] == "deployment" and a["environment"] == "test" and a["outcome"] == "SUCCEEDED"
        for a in audit
    )
    if not test_succeeded and prod_touched:
        report.violations.append("prod was touched although test never succeeded in this run")
    if report.violations:
        report.violations.append(f"output tail: {out[-1500:]!r}")
    return report


def check_environment(
    pipe: PipelineEnv,
    env: str,
    new: str | None,
    tag: str,
    before: tuple[str | None, str | None],
    audit: list[dict[str, Any]],
    runs_before: dict[str, set[str]],
    report: RunReport,
) -> None:
    """Classify ``env``'s end state, verify it on the node, and compare it with what mlcd said."""
    prev, prev_tag = before
    r = reader(pipe, env)
    try:
        active = r.active(pipe.project_key)
    finally:
        r.close()
    content = bundle_tag(pipe, env)
    records = [a for a in audit if a["operation"] == "deployment" and a["environment"] == env]
    last = records[-1] if records else None
    report.outcomes[env] = last["outcome"] if last else None
    expected_tag: str | None
    if new is not None and active == new:
        state, expected_tag = "NEW", tag
    elif active == prev:
        state, expected_tag = "PREVIOUS", prev_tag
    else:
        state, expected_tag = "OTHER", None
    report.states[env] = state
    said = last["outcome"] if last else None
    if state == "OTHER" and said != "FAILED_NEEDS_ATTENTION":
        report.violations.append(f"{env}: on {active}, neither new {new} nor previous {prev}; audit: {said}")
    if state == "PREVIOUS" and said == "SUCCEEDED":
        report.violations.append(f"{env}: audit says SUCCEEDED but the previous bundle {prev} is active")
    if state == "NEW" and said not in ("SUCCEEDED", "FAILED_NEEDS_ATTENTION"):
        report.violations.append(f"{env}: new bundle active but audit said {said}")
    if last and last["detail"].get("activeBundleId") not in (None, active):
        report.violations.append(
            f"{env}: audit names {last['detail']['activeBundleId']} active, the node has {active}"
        )
    if expected_tag is not None and content != expected_tag:
        report.violations.append(f"{env}: active bundle content is {content}, expected {expected_tag}")
    # no blind retry: every run the node started is one mlcd says it started
    after = scenario_runs(pipe, env)
    for sid in SCENARIOS:
        started = after[sid] - runs_before[sid]
        said_runs = [a for a in audit if a["operation"] == "run_scenario" and a["environment"] == env
                     and a["detail"].get("scenario") == sid]  # fmt: skip
        if len(started) > len(said_runs):
            report.violations.append(
                f"{env}: {sid} started {len(started)} time(s) on the node, mlcd reported {len(said_runs)}"
            )
    smoke_fails_by_design = state == "NEW" and report.fail_smoke
    if active is not None and state != "OTHER" and not smoke_fails_by_design and not smoke_passes(pipe, env):
        report.violations.append(f"{env}: smoke scenario fails on the active bundle {active}")


def run_lane(root: Path, seeds: list[int]) -> list[RunReport]:
    """One pipeline, the seeds one after the other."""
    reports: list[RunReport] = []
    counter = [0]
    with fast_pipeline(root, read_timeout=READ_TIMEOUT) as pipe:
        for seed in seeds:
            ensure_baseline(pipe, counter)
            report = faulted_run(pipe, seed)
            reports.append(report)
            record_result(
                "faults", plan="random", seed=seed, exit=report.exit_code, faults=report.faults,
                requests=report.requests, states=report.states, outcomes=report.outcomes,
                violations=len(report.violations),
            )  # fmt: skip
        ensure_baseline(pipe, counter)
    return reports


def run_seeds(tmp_path: Path, seeds: list[int], lanes: int) -> list[RunReport]:
    """Run the seeds on ``lanes`` independent pipelines at once; assert no violation (seeds printed)."""
    chunks = [seeds[i::lanes] for i in range(lanes) if seeds[i::lanes]]
    with concurrent.futures.ThreadPoolExecutor(len(chunks)) as pool:
        futures = [pool.submit(run_lane, tmp_path / f"lane{i}", chunk) for i, chunk in enumerate(chunks)]
        reports = [r for f in futures for r in f.result()]
    failing = [r for r in reports if r.violations]
    for r in reports:
        print(f"seed {r.seed}: exit {r.exit_code}, {r.faults} faults in {r.requests} requests, "
              f"states {r.states}, audit {r.outcomes}")  # fmt: skip
    assert sum(r.faults for r in reports) > 0, "no fault was injected"
    assert not failing, "\n".join(
        f"seed {r.seed} (replay: {REPLAY.format(seed=r.seed)}): " + "; ".join(r.violations) for r in failing
    )
    return reports


def test_flow_under_faults_fast_subset(tmp_path: Path) -> None:
    """Two seeded faulted runs, new seeds each time (the full 50 run under `make reliability`)."""
    seeds = fresh_seeds(FAST_RUNS)
    reports = run_seeds(tmp_path, seeds, lanes=1)
    assert len(reports) == len(seeds)


@pytest.mark.reliability
@pytest.mark.timeout(900)  # 50 faulted runs on two lanes: about 5 min alone, more on a shared machine
def test_flow_under_faults_50_runs(tmp_path: Path) -> None:
    """Fifty seeded faulted runs of the whole flow on two independent pipelines."""
    override = os.environ.get("MLCD_FAULT_SEEDS")
    seeds = fresh_seeds(FULL_RUNS)
    reports = run_seeds(tmp_path, seeds, lanes=2 if len(seeds) > 1 else 1)
    assert len(reports) == len(seeds)
    assert override or len(reports) >= FULL_RUNS


def test_node_error_in_the_test_stage_after_activation_is_reported(tmp_path: Path) -> None:
    """A 500 answer to reading a test run, after activation: the environment's state must be said.

    Found by the faulted runs (seeds 102/103 with a 1% HTTP 500 rule): exit 8 and no deployment record
    while the untested bundle stayed active; fixed in e43c23b.
    """
    with fast_pipeline(tmp_path / "pipe", read_timeout=READ_TIMEOUT) as pipe:
        ensure_baseline(pipe, [0])
        before = reader(pipe, "test")
        previous = before.active(pipe.project_key)
        before.close()
        runs_before = scenario_runs(pipe, "test")
        audit_start = len(pipe.audit_records())
        pipe.automation["test"].set_faults({"seed": 1, "rules": [
            {"method": "GET", "path": r"/scenarios/TEST_PASS/[0-9][0-9-]+/$", "status": 500, "times": 1},
        ]})  # fmt: skip
        proc = pipe.mlcd("run", "--build-number", "500", timeout=300)
        pipe.automation["test"].clear_faults()
        new = pipe.run_record()["bundleId"]
        r = reader(pipe, "test")
        active = r.active(pipe.project_key)
        r.close()
        audit = pipe.audit_records()[audit_start:]
        records = [a for a in audit if a["operation"] == "deployment" and a["environment"] == "test"]
        assert proc.returncode != 0
        assert records, "no deployment record for test although the run activated a bundle there"
        assert records[-1]["detail"]["activeBundleId"] == active
        if active == new:
            assert records[-1]["outcome"] == "FAILED_NEEDS_ATTENTION"
            assert proc.returncode != 8, "exit 8 says 'unchanged' but the new bundle is active"
        else:
            assert active == previous and records[-1]["outcome"] == "FAILED_ROLLED_BACK"
        started = scenario_runs(pipe, "test")
        said = [a for a in audit if a["operation"] == "run_scenario" and a["environment"] == "test"]
        assert sum(len(started[s] - runs_before[s]) for s in SCENARIOS) <= len(said)


def test_a_trigger_answered_late_starts_the_scenario_once(tmp_path: Path) -> None:
    """The node answers the smoke trigger 3 s late (read timeout 1.5 s): still one run on the node."""
    with fast_pipeline(tmp_path / "pipe", read_timeout=READ_TIMEOUT) as pipe:
        assert pipe.mlcd("bundle").returncode == 0
        assert pipe.mlcd("deploy", "--env", "test").returncode == 0
        node = pipe.automation["test"]
        before = scenario_runs(pipe, "test")["TEST_SMOKE"]
        audit_start = len(pipe.audit_records())
        node.set_faults({"seed": 1, "rules": [
            {"method": "POST", "path": "/scenarios/TEST_SMOKE/run$", "latency": 3.0, "times": 1},
        ]})  # fmt: skip
        proc = pipe.mlcd("smoke", "--env", "test")
        r = reader(pipe, "test")
        try:
            time.sleep(3.5)  # let the late request land on the node, then its run finish
            give_up = time.monotonic() + 30
            while r.running(pipe.project_key, "TEST_SMOKE") and time.monotonic() < give_up:
                time.sleep(0.2)
        finally:
            r.close()
            node.clear_faults()
        assert proc.returncode == 0, proc.stderr
        started = scenario_runs(pipe, "test")["TEST_SMOKE"] - before
        said = [a for a in pipe.audit_records()[audit_start:] if a["operation"] == "run_scenario"]
        assert len(said) == 1
        assert len(started) == 1, f"the node ran TEST_SMOKE {len(started)} times for one mlcd smoke"
