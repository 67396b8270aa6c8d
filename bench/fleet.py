"""Benchmarks 6 and 7: a multi-node environment from one process, and the import cost of each command.

6. Fleet fan-out: one environment with N automation nodes (``nodes:`` in mlcd.yaml),
   one ``mlcd deploy --env fleet`` process per release, a new bundle each repetition.
   Wall time, CPU and peak RSS of that one process at each N, as min / median / max
   over the repetitions, with the load average before and after each size. The
   target is the wall-time ratio 20 nodes : 1 node (medians, and the ratio of the
   maxima to the minima as its worst case), measured in the same run.
7. Import cost of each command: ``python -X importtime -c "import mlcd.cli, <the
   command's stage module>"``, the sum of every module's own import time, min /
   median / max over the repetitions, and the three heaviest modules. Imports a
   command makes only while running (e.g. the HTTP client inside a node call) are
   not in this figure; the ``runtime`` row adds ``mlcd.dss.node`` and
   ``mlcd.release.deploy`` (what every node-facing command loads).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from benchlib import PYTHON, CpuMeter, Measured, Section, Verdict, fmt, load_average, median, table, work_dir
from pipeline import PROJECT, Pipeline, _fail, _key_env, start_pipeline

FAN_OUT_TARGET = 1.5  # 20 nodes in at most 1.5x the wall time of one
COMMANDS = ("validate", "bundle", "deploy", "test", "smoke", "rollback", "status", "run", "plan")


def _spread(values: list[float], digits: int = 2) -> str:
    """min / median / max."""
    if not values:
        return "n/a"
    return f"{fmt(min(values), digits)} / {fmt(median(values), digits)} / {fmt(max(values), digits)}"


def _fleet_config(pipe: Pipeline, envs: list[str], options: dict[str, Any]) -> None:
    """Rewrite mlcd.yaml: one environment `fleet` whose nodes are the started automation nodes."""
    config = yaml.safe_load(pipe.config.read_text())
    config["environments"] = [
        {
            "name": "fleet",
            **options,
            "nodes": [{"name": e, "url": pipe.nodes[e].url, "api_key_env": _key_env(e)} for e in envs],
        }
    ]
    pipe.config.write_text(yaml.safe_dump(config, sort_keys=False))


def _one_size(n: int, reps: int) -> dict[str, Any]:
    """``reps`` deploys of a new bundle to a fleet of ``n`` nodes: their measurements."""
    options = {
        "approval": False,
        "tests": False,
        "smoke": [],
        "timeouts": {"scenario": 120, "deploy": 300, "lock": 60},
        "rollback_on_failure": False,
    }
    envs = [f"node{k:02d}" for k in range(1, n + 1)]
    with work_dir(f"fleet-{n}") as root:
        pipe = start_pipeline(root, envs, {"SMOKE": 0.1}, options)
        try:
            _fleet_config(pipe, envs, options)
            load_before = load_average()
            runs: list[Measured] = []
            node_cpu: list[float] = []
            meters = {e: CpuMeter(pipe.nodes[e].pid) for e in envs}
            for rep in range(reps):
                out = root / f"out-{rep}"
                b = pipe.mlcd(
                    "bundle", "--bundle-id", f"{PROJECT}_f{n}r{rep}", "--build-number", "1", out_dir=out
                )
                if b.returncode != 0:
                    raise _fail("mlcd bundle", b)
                cpu0 = sum(m.cpu_s() for m in meters.values())
                m = pipe.mlcd("deploy", "--env", "fleet", out_dir=out)
                node_cpu.append(sum(x.cpu_s() for x in meters.values()) - cpu0)
                if m.returncode != 0:
                    raise _fail("mlcd deploy --env fleet", m)
                runs.append(m)
            return {"runs": runs, "node_cpu": node_cpu, "load": f"{load_before} -> {load_average()}"}
        finally:
            pipe.stop()


def run_fleet(sizes: list[int], reps: int) -> Section:
    """Benchmark 6: one process deploys to a fleet of N nodes."""
    section = Section("6. Fleet: one environment on N nodes, one mlcd process")
    started = time.perf_counter()
    rows = []
    walls: dict[int, list[float]] = {}
    peaks: dict[int, float] = {}
    for n in sizes:
        r = _one_size(n, reps)
        runs: list[Measured] = r["runs"]
        walls[n] = [m.wall_s for m in runs]
        peaks[n] = median([m.peak_rss_mb for m in runs])
        rows.append([n, len(runs), _spread(walls[n]), _spread([m.cpu_s for m in runs]),
                     _spread(r["node_cpu"]), _spread([m.peak_rss_mb for m in runs], 0),
                     r["load"]])  # fmt: skip
    section.body += table(
        ["nodes", "repetitions", "wall s (min / median / max)", "mlcd CPU s (min / median / max)",
         "stand-ins CPU s (min / median / max)", "mlcd peak RSS MB (min / median / max)",
         "load average 1/5/15 (before -> after)"],
        rows,
    )  # fmt: skip
    lo, hi = min(sizes), max(s for s in sizes if s <= 20) if any(s <= 20 for s in sizes) else max(sizes)
    if hi != lo:
        ratio = median(walls[hi]) / median(walls[lo])
        worst = max(walls[hi]) / min(walls[lo])
        best = min(walls[hi]) / max(walls[lo])
        section.verdicts.append(
            Verdict("6. fleet",
                    f"{hi} nodes in at most {FAN_OUT_TARGET:g}x the wall time of {lo} (one process)",
                    f"{ratio:.2f}x (median; range {best:.2f}x..{worst:.2f}x over {reps} repetitions)",
                    ratio <= FAN_OUT_TARGET)
        )  # fmt: skip
    section.verdicts.append(
        Verdict("6. fleet", "memory bounded (peak RSS of the one process, median)",
                ", ".join(f"{peaks[k]:.0f} MB at {k}" for k in sorted(peaks)), max(peaks.values()) < 200)
    )  # fmt: skip
    section.notes.append(
        f"One `mlcd deploy --env fleet` process; at most 16 nodes are worked on at once (threads). "
        f"This machine has {os.cpu_count()} cores shared by the process and the N stand-in nodes, whose CPU "
        "(import, unzip, activation) is shown: at large N it, not mlcd, bounds the wall time."
    )
    section.notes.append(
        "Profile (docs/benchmarks.md, section 6): the per-node cost is mostly the audit trail's records, "
        "each written and fsynced under one exclusive lock, and run.json updates, then the stand-ins' CPU."
    )
    section.seconds = time.perf_counter() - started
    return section


_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s+(\s*)(\S+)")


def _import_ms(modules: str) -> tuple[float, list[tuple[float, str]]]:
    """Sum of self import times (ms) for ``import modules``, and the heaviest (cumulative) top-level ones."""
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", f"import {modules}"],
        capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "PYTHONPATH": _pythonpath()},
    )  # fmt: skip
    total = 0.0
    heavy: list[tuple[float, str]] = []
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        total += int(m.group(1)) / 1000
        if len(m.group(3)) <= 1:  # imported by the command line itself (cumulative of a top-level import)
            heavy.append((int(m.group(2)) / 1000, m.group(4)))
    return total, sorted(heavy, reverse=True)[:3]


def _pythonpath() -> str:
    here = str(Path(__file__).resolve().parents[1] / "python")
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)


def run_imports(reps: int) -> Section:
    """Benchmark 7: the import cost of each command."""
    section = Section("7. Import cost of each command (`python -X importtime`)")
    started = time.perf_counter()
    rows = []
    worst = 0.0
    targets = {c: f"mlcd.cli, mlcd.commands.runner, mlcd.stages.{c}" for c in COMMANDS}
    targets["runtime"] = (
        "mlcd.cli, mlcd.commands.runner, mlcd.stages.deploy, mlcd.dss.node, mlcd.release.deploy"
    )
    for name, modules in targets.items():
        totals, heavy = [], []
        for _ in range(reps):
            total, heavy = _import_ms(modules)
            totals.append(total)
        worst = max(worst, median(totals))
        rows.append([name, reps, _spread(totals, 0), ", ".join(f"{mod} {ms:.0f}" for ms, mod in heavy)])
    section.body += table(
        ["command", "runs", "imports ms (min / median / max, sum of self times)",
         "heaviest top-level imports (cumulative ms)"],
        rows,
    )  # fmt: skip
    section.notes.append(f"load average after: {load_average()}")
    section.notes.append(
        "In a fleet, this cost is paid once per environment (one process), not once per node."
    )
    section.verdicts.append(
        Verdict("7. imports", "import cost of each command reported", f"max {worst:.0f} ms", None)
    )
    section.seconds = time.perf_counter() - started
    return section
