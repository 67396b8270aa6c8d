"""Benchmarks 4 and 5: the CLI end to end on stand-in nodes.

4. Pipeline overhead: ``mlcd run`` over two environments (deploy, tests, smoke
   each), with wait-step scenarios of known duration. overhead = wall time of the
   ``mlcd run`` process - the time during which at least one scenario of this run
   was queued or running on a node (union of the runs' [trigger, end] intervals, as
   the nodes report them; the stand-in, like DSS, starts a run a moment after its
   trigger). Everything else (interpreter start-up, validate, export, transfer,
   import, activation, polling delay, reports) counts as overhead. The strict
   figure (union of [start, end], so node queueing counts as overhead) is shown too.
5. Scale: one bundle (``mlcd bundle``) deployed to N automation nodes by N
   ``mlcd deploy --env regionK`` processes started at once (what a Jenkins
   ``parallel`` block does; ``mlcd run`` walks environments one after another), and,
   for contrast, one after another. Total wall time and each process's peak RSS.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from benchlib import (
    PYTHON,
    CpuMeter,
    Measured,
    Section,
    Verdict,
    child_env,
    fmt,
    median,
    new_key,
    run_measured,
    table,
    work_dir,
    write_project,
)

from mlcd.dss.node import DSSNode
from mlcd.sim.launcher import SimNode

PROJECT = "BENCHFLOW"
DESIGN_KEY_ENV = "DSS_DESIGN_API_KEY"
OVERHEAD_TARGET_S = 2.0

# scenario id -> wait seconds: two tests (run together by the test stage) and a smoke scenario
SCENARIOS = {"TEST_TRAIN": 3.0, "TEST_QUALITY": 2.0, "SMOKE": 1.0}


def _key_env(env: str) -> str:
    return f"DSS_{env.upper()}_API_KEY"


@dataclass
class Pipeline:
    """A design node with the bench project, automation nodes and an mlcd.yaml."""

    root: Path
    design: SimNode
    nodes: dict[str, SimNode]
    env: dict[str, str]
    config: Path

    def mlcd(self, *args: str, out_dir: Path, timeout: float = 600) -> Measured:
        """Run ``python -m mlcd ARGS`` (cwd = root) and measure it."""
        argv = [PYTHON, "-m", "mlcd", *args, "--config", str(self.config), "--out-dir", str(out_dir)]
        return run_measured(argv, env=self.env, cwd=self.root, timeout=timeout)

    def stop(self) -> None:
        """Stop every node."""
        for n in [*self.nodes.values(), self.design]:
            n.stop()


def start_pipeline(
    root: Path, envs: list[str], scenarios: dict[str, float], env_options: dict[str, Any]
) -> Pipeline:
    """Start a design node and one automation node per environment; write mlcd.yaml."""
    write_project(
        root / "design" / "projects",
        PROJECT,
        {
            sid: [{"id": "pause", "name": f"wait {s:g}s", "type": "wait", "seconds": s}]
            for sid, s in scenarios.items()
        },
    )
    (root / "design" / "projects" / PROJECT / "data").mkdir(exist_ok=True)
    (root / "design" / "projects" / PROJECT / "data" / "rows.csv").write_text(
        "id,x\n" + "".join(f"{i},{i * 3}\n" for i in range(2000))
    )
    keys = {DESIGN_KEY_ENV: new_key(), **{_key_env(e): new_key() for e in envs}}
    design = SimNode.start("design", root / "design", api_key=keys[DESIGN_KEY_ENV])
    nodes: dict[str, SimNode] = {}
    try:
        for e in envs:
            nodes[e] = SimNode.start("automation", root / f"auto-{e}", api_key=keys[_key_env(e)], node_name=e)
    except BaseException:
        for n in [*nodes.values(), design]:
            n.stop()
        raise
    config = {
        "project": PROJECT,
        "allow_insecure_http": True,  # the stand-in nodes listen on plain http on loopback
        "design": {"url": design.url, "api_key_env": DESIGN_KEY_ENV},
        "bundle": {"id_format": "{project}_{utc}_b{build}", "release_notes": "none"},
        "environments": [
            {"name": e, "url": nodes[e].url, "api_key_env": _key_env(e), **env_options} for e in envs
        ],
    }
    path = root / "mlcd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = child_env(**keys, MLCD_LOCK_DIR=str(root / "locks"), PYTHONUNBUFFERED="1")
    for var in ("BUILD_URL", "BUILD_NUMBER", "MLCD_CONFIG", "MLCD_OUT_DIR"):
        env.pop(var, None)
    return Pipeline(root, design, nodes, env, path)


def _trigger_s(run: dict[str, Any], start_ms: float) -> float:
    """When the run's trigger fired (the stand-in's trigger run id starts with epoch ms), else its start."""
    trig = run.get("trigger") if isinstance(run.get("trigger"), dict) else {}
    head = str((trig or {}).get("triggerRunId") or "").split("-", 1)[0]
    fired = float(head) if head.isdigit() else start_ms
    return min(fired, start_ms) / 1000.0


def _intervals(pipe: Pipeline, since_ms: float) -> list[tuple[float, float, float]]:
    """(trigger, start, end), epoch s, of every scenario run on the automation nodes since ``since_ms``."""
    spans: list[tuple[float, float, float]] = []
    for node in pipe.nodes.values():
        client = DSSNode(node.url, node.api_key, name=node.node_name)
        try:
            for sid in SCENARIOS:
                for r in client.get_last_runs(PROJECT, sid, limit=10):
                    start, end = r.get("start") or 0, r.get("end") or 0
                    if start >= since_ms and end >= start:
                        spans.append((_trigger_s(r, start), start / 1000.0, end / 1000.0))
        finally:
            client.close()
    return spans


def union_length(spans: list[tuple[float, float]]) -> float:
    """Total length covered by the intervals (overlaps counted once)."""
    total, cur_start, cur_end = 0.0, None, None
    for s, e in sorted(spans):
        if cur_end is None or s > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = s, e
        else:
            cur_end = max(cur_end, e)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


def _fail(what: str, m: Measured) -> RuntimeError:
    tail = " | ".join((m.stderr.strip().splitlines() or m.stdout.strip().splitlines() or ["no output"])[-3:])
    return RuntimeError(f"{what} exited {m.returncode}: {tail[:400]}")


def run_overhead(reps: int) -> Section:
    """Benchmark 4: `mlcd run` over two environments, ``reps`` times."""
    section = Section("4. Pipeline overhead (`mlcd run`, two environments)")
    started = time.perf_counter()
    envs = ["test", "prod"]
    options = {
        "approval": False,
        "tests": {"prefix": "TEST_", "exclude": []},
        "smoke": ["SMOKE"],
        "warning": "fail",
        "timeouts": {"scenario": 120, "deploy": 300, "lock": 60},
        "rollback_on_failure": True,
    }
    rows = []
    overheads: list[float] = []
    stricts: list[float] = []
    with work_dir("pipeline") as root:
        pipe = start_pipeline(root, envs, SCENARIOS, options)
        try:
            for rep in range(reps):
                since = time.time() * 1000.0
                cpu = {e: CpuMeter(n.pid) for e, n in pipe.nodes.items()}
                cpu0 = {e: m.cpu_s() for e, m in cpu.items()}
                m = pipe.mlcd("run", "--bundle-id", f"{PROJECT}_r{rep}", "--build-number", str(rep + 1),
                              out_dir=root / f"out-{rep}")  # fmt: skip
                if m.returncode != 0:
                    raise _fail("mlcd run", m)
                spans = _intervals(pipe, since)
                if len(spans) != len(SCENARIOS) * len(envs):
                    raise RuntimeError(
                        f"expected {len(SCENARIOS) * len(envs)} scenario runs, found {len(spans)}"
                    )
                busy = union_length([(t, e) for t, _, e in spans])
                strict = m.wall_s - union_length([(s, e) for _, s, e in spans])
                node_cpu = sum(cpu[e].cpu_s() - cpu0[e] for e in envs)
                overhead = m.wall_s - busy
                overheads.append(overhead)
                stricts.append(strict)
                rows.append([rep + 1, fmt(m.wall_s, 2), fmt(sum(e - s for _, s, e in spans), 2), fmt(busy, 2),
                             fmt(overhead, 2), fmt(overhead / len(envs), 2), fmt(strict / len(envs), 2),
                             fmt(m.cpu_s, 2), fmt(node_cpu, 2), fmt(m.peak_rss_mb, 0)])  # fmt: skip
        finally:
            pipe.stop()
    section.body += [
        "Per environment: deploy, test (TEST_TRAIN 3 s and TEST_QUALITY 2 s, started together), "
        "smoke (SMOKE 1 s). Before them: validate, bundle.",
        "",
    ]
    section.body += table(
        ["run", "wall s", "sum of scenario runs s", "scenario time on nodes s (union of trigger..end)",
         "overhead s", "overhead per environment s", "strict overhead per env s (union of start..end)",
         "mlcd CPU s", "automation stand-ins CPU s", "mlcd peak RSS MB"],
        rows,
    )  # fmt: skip
    per_env = median(overheads) / len(envs)
    strict_env = median(stricts) / len(envs)
    section.verdicts.append(
        Verdict("4. pipeline", f"overhead < {OVERHEAD_TARGET_S:g} s per environment",
                f"{per_env:.2f} s per environment (median of {len(overheads)}); strict: {strict_env:.2f} s",
                per_env < OVERHEAD_TARGET_S)
    )  # fmt: skip
    section.seconds = time.perf_counter() - started
    return section


def _parallel(pipe: Pipeline, envs: list[str], out_dir: Path) -> tuple[float, list[Measured]]:
    results: dict[str, Measured] = {}

    def one(env: str) -> None:
        results[env] = pipe.mlcd("deploy", "--env", env, out_dir=out_dir)

    threads = [threading.Thread(target=one, args=(e,)) for e in envs]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return wall, [results[e] for e in envs]


def _check_deployed(pipe: Pipeline, envs: list[str], bundle_id: str) -> None:
    for e in envs:
        client = DSSNode(pipe.nodes[e].url, pipe.nodes[e].api_key, name=e)
        try:
            active = client.active_bundle_id(PROJECT)
        finally:
            client.close()
        if active != bundle_id:
            raise RuntimeError(f"{e}: active bundle is {active}, expected {bundle_id}")


def run_scale(sizes: list[int]) -> Section:
    """Benchmark 5: one release to N automation nodes, in parallel and one after another."""
    section = Section("5. Scale: one release to N automation nodes")
    started = time.perf_counter()
    options = {
        "approval": False,
        "tests": False,
        "smoke": [],
        "timeouts": {"scenario": 120, "deploy": 300, "lock": 60},
        "rollback_on_failure": False,
    }
    rows = []
    walls: dict[int, float] = {}
    peaks: dict[int, float] = {}
    for n in sizes:
        envs = [f"region{k:02d}" for k in range(1, n + 1)]
        with work_dir(f"scale-{n}") as root:
            t0 = time.perf_counter()
            pipe = start_pipeline(root, envs, {"SMOKE": 0.1}, options)
            startup = time.perf_counter() - t0
            try:
                out = root / "out"
                b = pipe.mlcd(
                    "bundle", "--bundle-id", f"{PROJECT}_par{n}", "--build-number", "1", out_dir=out
                )
                if b.returncode != 0:
                    raise _fail("mlcd bundle", b)
                node_cpu = {e: CpuMeter(pipe.nodes[e].pid) for e in envs}
                cpu0 = sum(m.cpu_s() for m in node_cpu.values())
                wall, ms = _parallel(pipe, envs, out)
                cpu_nodes = sum(m.cpu_s() for m in node_cpu.values()) - cpu0
                bad = [(e, m) for e, m in zip(envs, ms, strict=True) if m.returncode != 0]
                if bad:
                    raise _fail(f"mlcd deploy --env {bad[0][0]}", bad[0][1])
                _check_deployed(pipe, envs, f"{PROJECT}_par{n}")
                walls[n] = wall
                peaks[n] = max(m.peak_rss_mb for m in ms)
                cpu_mlcd = sum(m.cpu_s for m in ms)
                rows.append([n, "parallel", fmt(wall, 2), fmt(median([m.wall_s for m in ms]), 2),
                             fmt(cpu_mlcd, 2), fmt(cpu_nodes, 2), fmt((cpu_mlcd + cpu_nodes) / _cores(), 2),
                             fmt(peaks[n], 0), fmt(sum(m.peak_rss_mb for m in ms), 0),
                             fmt(startup, 1)])  # fmt: skip
                # contrast: the next release, one environment after another
                out2 = root / "out-seq"
                b = pipe.mlcd(
                    "bundle", "--bundle-id", f"{PROJECT}_seq{n}", "--build-number", "2", out_dir=out2
                )
                if b.returncode != 0:
                    raise _fail("mlcd bundle", b)
                t1 = time.perf_counter()
                seq = [pipe.mlcd("deploy", "--env", e, out_dir=out2) for e in envs]
                seq_wall = time.perf_counter() - t1
                bad = [(e, m) for e, m in zip(envs, seq, strict=True) if m.returncode != 0]
                if bad:
                    raise _fail(f"mlcd deploy --env {bad[0][0]}", bad[0][1])
                _check_deployed(pipe, envs, f"{PROJECT}_seq{n}")
                per = median([m.wall_s for m in seq])
                cpu_sum = sum(m.cpu_s for m in seq)
                rows.append([n, "one after another", fmt(seq_wall, 2), fmt(per, 2), fmt(cpu_sum, 2), "", "",
                             fmt(max(m.peak_rss_mb for m in seq), 0), "", ""])  # fmt: skip
            finally:
                pipe.stop()
    section.body += table(
        ["nodes", "deploys", "total wall s", "per-deploy wall s (median)", "mlcd CPU s (sum)",
         "stand-ins CPU s", "CPU floor s (all CPU / cores)", "peak RSS per mlcd process MB (max)",
         "sum of peak RSS MB", "nodes start-up s"],
        rows,
    )  # fmt: skip
    if len(walls) >= 2:
        lo, hi = min(walls), max(walls)
        growth = walls[hi] / walls[lo]
        cpu_bound = hi / max(1, _cores())
        section.verdicts.append(
            Verdict("5. scale", f"total time close to flat from {lo} to {hi} nodes (parallel)",
                    f"{walls[lo]:.2f} s -> {walls[hi]:.2f} s ({growth:.1f}x for {hi / lo:.0f}x the nodes)",
                    growth <= 2.0)
        )  # fmt: skip
        section.verdicts.append(
            Verdict("5. scale", "bounded memory per deploy process",
                    ", ".join(f"{peaks[k]:.0f} MB at {k}" for k in sorted(peaks)),
                    max(peaks.values()) <= 1.5 * min(peaks.values()) and max(peaks.values()) < 100)
        )  # fmt: skip
        section.notes.append(
            f"This machine has {_cores()} cores: {hi} deploy processes plus {hi} stand-in nodes share them, "
            f"so a CPU-bound lower limit is about {cpu_bound:.0f}x one process's CPU time. Most of a deploy "
            "process's CPU is interpreter start-up and imports (requests, importlib.metadata), paid once "
            "per process; the 'CPU floor' column is the wall time a perfectly parallel run could reach "
            "here, the rest of the wall time is waiting for a core (other jobs included, see load average)."
        )
    section.notes.append(
        "Parallel = N `mlcd deploy --env regionK` processes started at once on one shared out dir "
        "(run record merges are serialised by its lock file). `mlcd run` deploys environments one after "
        "another, so it is not used here."
    )
    section.seconds = time.perf_counter() - started
    return section


def _cores() -> int:
    return os.cpu_count() or 1
