"""Interruptions of `mlcd deploy`, `test`, `smoke` and `rollback` at every step boundary, placed exactly.

Every request to the test node is slowed by :data:`STEP_LATENCY`, so each step of a
deploy takes at least that long. The audit trail is watched: as soon as the record
of step N is written, the deploy gets the interruption, before step N+1 can end.
The steps are read from a clean deploy (``read_state``, ``record_previous``, …,
``activate``, ``verify``), so a boundary between the activation answer and the
deploy record is among them. One more point kills the deploy while the node is
still activating (the activation request is held on the node) and starts the
re-run at once.

Interruptions: SIGKILL (then the same command again, at once), SIGTERM, SIGINT,
SIGHUP, a closed stdout and a closed stderr. Each ends verified: the node's active
bundle is the new one or the previous one, ``run.json`` names it, no environment is
left DEPLOYING, the last audit ``deployment`` record (when the command wrote one)
names it too, and the next `mlcd status` names the node's bundle. `test`, `smoke`
and `rollback` run after a clean deploy of the new bundle (their "new" is that
bundle, "previous" the one active before it). Each point is recorded once
(command, interruption, step) for the summary table.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.pipeline_env import PipelineEnv
from support.reltools import fast_pipeline, reader, record_result

ENV = "test"
STEP_LATENCY = 0.4
INTERRUPTIONS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "closed-stdout", "closed-stderr")
SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


@dataclass
class Point:
    """One interruption and how it ended."""

    interruption: str
    step: str  # the audit record after which it landed
    exit_code: int | None = None
    end: str = ""  # NEW / PREVIOUS (node) + run.json state
    rerun_exit: int | None = None


def deploy_ops(pipe: PipelineEnv, since: int) -> list[str]:
    """The operations a command recorded for the environment, in order."""
    return [
        f"{r['operation']}:{r['outcome']}"
        for r in pipe.audit_records()[since:]
        if r.get("environment") == ENV
    ]


def step_names(ops: list[str]) -> list[str]:
    """``ops`` with a repeated operation numbered (``run_scenario:SUCCESS#2``): one name per boundary."""
    seen: dict[str, int] = {}
    names = []
    for op in ops:
        seen[op] = seen.get(op, 0) + 1
        names.append(op if seen[op] == 1 else f"{op}#{seen[op]}")
    return names


def build(pipe: PipelineEnv, k: int) -> str:
    proc = pipe.mlcd("bundle", "--build-number", str(k))
    assert proc.returncode == 0, proc.stderr
    return str(pipe.run_record()["bundleId"])


def interrupt_at(
    pipe: PipelineEnv, interruption: str, step_index: int, hold: str | None = None, command: str = "deploy"
) -> int:
    """Run `mlcd COMMAND`, interrupt it once its ``step_index``-th record is written; its exit code."""
    node = pipe.automation[ENV]
    rules: list[dict[str, Any]] = [{"latency": STEP_LATENCY}]
    if hold:
        rules.insert(0, {"path": hold, "latency": 3.0, "times": 1})
    node.set_faults({"seed": 1, "rules": rules})
    since = len(pipe.audit_records())
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcd", command, "--env", ENV], cwd=pipe.root, env=pipe.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        give_up = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < give_up:
            if len(deploy_ops(pipe, since)) > step_index:
                break
            time.sleep(0.01)
        if proc.poll() is None:
            if interruption == "closed-stdout":
                proc.stdout.close()
            elif interruption == "closed-stderr":
                proc.stderr.close()
            else:
                proc.send_signal(getattr(signal, interruption))
        proc.stdout.close()
        proc.stderr.close()
        return proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def end_state(pipe: PipelineEnv, new: str, previous: str, since: int) -> str:
    """Check the environment ended verified and recorded; its end as "NEW/STATE" or "PREVIOUS/STATE"."""
    r = reader(pipe, ENV)
    try:
        active = r.active(pipe.project_key)
    finally:
        r.close()
    assert active in (new, previous), f"{active} is active: neither the new {new} nor the previous {previous}"
    status = pipe.mlcd("status", "--env", ENV)
    assert status.returncode == 0 and str(active) in status.stdout, (status.stdout, status.stderr)
    entry = pipe.run_record()["environments"].get(ENV)
    finals = [
        r for r in pipe.audit_records()[since:] if r["operation"] == "deployment" and r["environment"] == ENV
    ]
    if entry is None:  # interrupted while reading the node, before anything was recorded or changed
        assert active == previous and not finals, (active, finals)
        return "PREVIOUS/(nothing recorded)"
    assert entry["state"] != "DEPLOYING", entry
    assert entry.get("activeBundleId") in (active, None) or entry["state"] == "NEEDS_ATTENTION", (
        entry,
        active,
    )
    finals = [
        r for r in pipe.audit_records()[since:] if r["operation"] == "deployment" and r["environment"] == ENV
    ]
    if finals:
        assert finals[-1]["detail"].get("activeBundleId") in (active, None), (finals[-1], active)
    return f"{'NEW' if active == new else 'PREVIOUS'}/{entry['state']}"


def prepare(pipe: PipelineEnv, command: str, k: int) -> tuple[str, str]:
    """A new bundle (deployed, unless ``command`` is deploy); (new, previous) for :func:`end_state`."""
    previous = str(reader(pipe, ENV).active(pipe.project_key))
    new = build(pipe, k)
    if command != "deploy":
        deployed = pipe.mlcd("deploy", "--env", ENV)
        assert deployed.returncode == 0, deployed.stderr
    return new, previous


def run_points(
    root: Path, interruptions: tuple[str, ...], steps: Callable[[str], bool], command: str = "deploy"
) -> list[Point]:
    """For each interruption and each chosen step boundary: a fresh bundle, one interrupted ``command``."""
    points: list[Point] = []
    with fast_pipeline(root) as pipe:
        build(pipe, 0)
        assert pipe.mlcd("deploy", "--env", ENV).returncode == 0
        prepare(pipe, command, 1)
        since = len(pipe.audit_records())
        assert pipe.mlcd(command, "--env", ENV).returncode == 0
        ops = step_names(deploy_ops(pipe, since))[:-1]  # the last record ends the command: nothing after it
        k = 2
        for interruption in interruptions:
            for index, step in enumerate(ops):
                if not steps(step):
                    continue
                new, previous = prepare(pipe, command, k)
                k += 1
                since = len(pipe.audit_records())
                point = Point(interruption, step, interrupt_at(pipe, interruption, index, command=command))
                pipe.automation[ENV].clear_faults()
                if interruption == "SIGKILL":  # the same command again, at once
                    point.rerun_exit = pipe.mlcd(command, "--env", ENV, timeout=180).returncode
                point.end = end_state(pipe, new, previous, since)
                if command in ("test", "smoke") and interruption in SIGNALS:  # a stopped gate: no verdict
                    # (exit 0 when the signal came once the gate had decided: see mlcd.signals.finish)
                    assert point.exit_code in (0, 128 + getattr(signal, interruption)), point
                    assert point.end == "NEW/DEPLOYED", point  # the deploy's verified record stands
                points.append(point)
                record_result("step_interruptions", command=command, interruption=interruption, step=step,
                              exit=point.exit_code, rerun_exit=point.rerun_exit, end=point.end)  # fmt: skip
                print(f"{command} {interruption} after {step}: exit {point.exit_code}, "
                      f"re-run {point.rerun_exit}, end {point.end}")  # fmt: skip
    return points


def kill_while_activating(root: Path) -> Point:
    """SIGKILL while the node holds the activation request; the re-run starts while it may still activate."""
    with fast_pipeline(root) as pipe:
        build(pipe, 0)
        assert pipe.mlcd("deploy", "--env", ENV).returncode == 0
        previous = build(pipe, 1)
        since = len(pipe.audit_records())
        assert pipe.mlcd("deploy", "--env", ENV).returncode == 0
        # the kill lands once the check before activating is recorded: activate is being sent, held
        checked = deploy_ops(pipe, since).index("check_active:SUCCESS")
        new = build(pipe, 2)
        since = len(pipe.audit_records())
        point = Point("SIGKILL", "activation in flight on the node")
        point.exit_code = interrupt_at(pipe, "SIGKILL", checked, hold="actions/activate$")
        pipe.automation[ENV].clear_faults()
        point.rerun_exit = pipe.mlcd("deploy", "--env", ENV, timeout=180).returncode
        time.sleep(3.5)  # the held activation lands on the node, whatever the re-run did
        rerun = pipe.mlcd("deploy", "--env", ENV, timeout=180)
        point.end = end_state(pipe, new, previous, since)
        assert rerun.returncode == 0 and point.end == "NEW/DEPLOYED", (rerun.stdout, rerun.stderr)
        record_result("step_interruptions", command="deploy", interruption="SIGKILL", step=point.step,
                      exit=point.exit_code, rerun_exit=point.rerun_exit, end=point.end)  # fmt: skip
        return point


def test_deploy_interrupted_around_activation_fast_subset(tmp_path: Path) -> None:
    """SIGTERM and SIGKILL between the activation answer and the deploy record (grid: `make reliability`)."""
    points = run_points(tmp_path / "pipe", ("SIGTERM", "SIGKILL"), lambda step: step == "activate:SUCCESS")
    assert [p.step for p in points] == ["activate:SUCCESS"] * 2


@pytest.mark.reliability
@pytest.mark.parametrize("interruption", INTERRUPTIONS)
def test_deploy_interrupted_at_every_step(tmp_path: Path, interruption: str) -> None:
    points = run_points(tmp_path / "pipe", (interruption,), lambda step: True)
    assert len(points) >= 6


@pytest.mark.reliability
@pytest.mark.parametrize("interruption", INTERRUPTIONS)
@pytest.mark.parametrize("command", ["test", "smoke", "rollback"])
def test_command_interrupted_at_every_step(tmp_path: Path, command: str, interruption: str) -> None:
    """`mlcd test`, `smoke` and `rollback` (after a clean deploy) interrupted after each of their steps."""
    points = run_points(tmp_path / "pipe", (interruption,), lambda step: True, command)
    assert len(points) >= 2


@pytest.mark.reliability
def test_a_rerun_while_the_node_is_still_activating(tmp_path: Path) -> None:
    point = kill_while_activating(tmp_path / "pipe")
    print(point)
