"""Kills: the CLI dies (SIGKILL) at seeded random points of `deploy`, `smoke` and `rollback`.

A kill lands either while a chosen request is in flight (the stand-in delays that
route, and the CLI is killed during the delay) or after a random delay. After
every kill the run record, the stage files and the audit trail must still parse
(they are written atomically), and running the same command again (or, if that
does not succeed, `mlcd rollback`) must bring the environment to a verified state:
the bundle the command reports active, with its own content, and a passing smoke
scenario run directly on the node.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.pipeline_env import PipelineEnv
from support.reltools import bundle_tag, fast_pipeline, reader, record_result, smoke_passes

ENV = "test"
# command -> [(path regex to delay, substring of the stats route key that shows the request arrived)]
ROUTES: dict[str, list[tuple[str, str]]] = {
    "deploy": [
        ("importFromStream$", "importFromStream"),
        ("actions/preload$", "actions/preload"),
        ("actions/activate$", "actions/activate"),
        ("/bundles/imported$", "GET /projects/<key>/bundles/imported"),
    ],
    "smoke": [
        ("/scenarios/TEST_SMOKE/run$", "/scenarios/<sid>/run"),
        ("get-run-for-trigger", "get-run-for-trigger"),
        ("/scenarios/$", "GET /projects/<key>/scenarios/"),
    ],
    "rollback": [
        ("actions/activate$", "actions/activate"),
        ("/scenarios/TEST_SMOKE/run$", "/scenarios/<sid>/run"),
        ("get-run-for-trigger", "get-run-for-trigger"),
    ],
}


@dataclass
class KillPoint:
    """Where one kill landed and how the environment was recovered."""

    seed: int
    command: str
    where: str
    killed: bool
    recovered_by: str = ""
    active: str | None = None


def kill_during(pipe: PipelineEnv, command: str, rng: random.Random, seed: int) -> KillPoint:
    """Start ``mlcd <command> --env test`` and SIGKILL it at a random point."""
    node = pipe.automation[ENV]
    node.reset_stats()
    if rng.random() < 0.6:
        regex, arrived = rng.choice(ROUTES[command])
        node.set_faults({"seed": seed, "rules": [{"path": regex, "latency": 1.2, "times": 1}]})
        where = f"in flight: {arrived}"
    else:
        regex, arrived = "", ""
        delay = rng.uniform(0.25, 1.3)
        where = f"after {delay:.2f}s"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcd", command, "--env", ENV], cwd=pipe.root, env=pipe.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if arrived:
            give_up = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < give_up:
                if any(arrived in key for key in node.stats()["routes"]):
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.0))
        else:
            time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        node.clear_faults()
    return KillPoint(seed=seed, command=command, where=where, killed=killed)


def assert_records_parse(pipe: PipelineEnv, point: KillPoint) -> None:
    """The run record, the stage files and every audit line are whole JSON after the kill."""
    for path in pipe.out_dir.glob("*.json"):
        try:
            json.loads(path.read_text())
        except ValueError as exc:
            raise AssertionError(f"{path.name} is corrupt after a kill ({point}): {exc}") from None
    audit = pipe.out_dir / "audit.jsonl"
    if audit.exists():
        for n, line in enumerate(audit.read_text().splitlines(), 1):
            try:
                json.loads(line)
            except ValueError:
                raise AssertionError(f"audit.jsonl line {n} is torn after a kill ({point})") from None


def verified(pipe: PipelineEnv, expected: str, tags: dict[str, str]) -> None:
    """``expected`` is active on the node, with its own content, and smoke passes there."""
    r = reader(pipe, ENV)
    try:
        active = r.active(pipe.project_key)
    finally:
        r.close()
    assert active == expected, f"{active} is active, expected {expected}"
    assert bundle_tag(pipe, ENV) == tags[expected], "the active bundle's content is not its own"
    assert smoke_passes(pipe, ENV), f"smoke fails on {expected}"


def recover(pipe: PipelineEnv, point: KillPoint, expected: str, fallback: str, tags: dict[str, str]) -> None:
    """Run the command again; if that does not end well, `mlcd rollback`; check the result on the node."""
    again = pipe.mlcd(point.command, "--env", ENV, timeout=180)
    assert "Traceback" not in again.stderr, again.stderr
    if again.returncode == 0:
        point.recovered_by = f"{point.command} again"
        point.active = expected
        verified(pipe, expected, tags)
        return
    back = pipe.mlcd("rollback", "--env", ENV, timeout=180)
    assert back.returncode == 0, (
        f"{point}: {point.command} again exited {again.returncode} ({again.stderr.strip()}), "
        f"then rollback exited {back.returncode} ({back.stderr.strip()})"
    )
    why = again.stderr.strip()
    point.recovered_by = f"rollback (after {point.command} again exited {again.returncode}: {why})"
    point.active = fallback
    verified(pipe, fallback, tags)


def kill_iterations(root: Path, seed: int, minimum_kills: int, max_iterations: int) -> list[KillPoint]:
    """Release, then per iteration: build, kill deploy / smoke / rollback and recover each."""
    rng = random.Random(seed)
    points: list[KillPoint] = []
    with fast_pipeline(root) as pipe:
        pipe.set_design_variables(model_version="k0")
        base = pipe.mlcd("bundle", "--build-number", "0")
        assert base.returncode == 0, base.stderr
        first = str(pipe.run_record()["bundleId"])
        assert pipe.mlcd("deploy", "--env", ENV).returncode == 0
        tags = {first: "k0"}
        previous = first
        for k in range(1, max_iterations + 1):
            if sum(p.killed for p in points) >= minimum_kills:
                break
            pipe.set_design_variables(model_version=f"k{k}")
            built = pipe.mlcd("bundle", "--build-number", str(k))
            assert built.returncode == 0, built.stderr
            new = str(pipe.run_record()["bundleId"])
            tags[new] = f"k{k}"
            for command, expected, fallback in (
                ("deploy", new, previous),
                ("smoke", new, previous),
                ("rollback", previous, previous),
            ):
                point = kill_during(pipe, command, rng, seed * 1000 + k)
                assert_records_parse(pipe, point)
                recover(pipe, point, expected, fallback, tags)
                assert_records_parse(pipe, point)
                points.append(point)
                record_result("kills", seed=seed, command=command, where=point.where, killed=point.killed,
                              recovered_by=point.recovered_by)  # fmt: skip
                if point.recovered_by == "rollback" and command != "rollback":
                    break  # the iteration's bundle is gone: build the next one
            r = reader(pipe, ENV)
            previous = str(r.active(pipe.project_key))
            r.close()
    for p in points:
        print(f"seed {p.seed}: {p.command} killed={p.killed} {p.where} -> {p.recovered_by} ({p.active})")
    return points


def test_kills_fast_subset(tmp_path: Path) -> None:
    """One iteration: deploy, smoke and rollback killed once each, each recovered and verified."""
    points = kill_iterations(tmp_path / "pipe", seed=2026, minimum_kills=1, max_iterations=1)
    assert {p.command for p in points} == {"deploy", "smoke", "rollback"}
    assert all(p.killed for p in points if p.where.startswith("in flight"))


@pytest.mark.reliability
def test_kills_at_20_or_more_points(tmp_path: Path) -> None:
    """At least twenty real kills across deploy, smoke and rollback, each recovered and verified."""
    points = kill_iterations(tmp_path / "pipe", seed=2026, minimum_kills=21, max_iterations=14)
    assert sum(p.killed for p in points) >= 20
    assert {p.command for p in points if p.killed} == {"deploy", "smoke", "rollback"}
