"""Shared helpers of the benchmark suite: statistics, child-process measurement, stand-in nodes, results.

Every process a benchmark starts goes through :func:`run_measured` (it is waited
for, and killed if it outlives its timeout) or a :class:`~mlcd.sim.launcher.SimNode`
that the caller stops in a ``finally`` block. Only loopback addresses are used.
API keys reach child processes through environment variables, never argv.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / "work"
PYTHON = sys.executable
KEY_ENV = "MLCD_BENCH_API_KEY"  # how workers receive the node's API key (never argv)
MIB = 1024 * 1024


def new_key() -> str:
    """A fresh random API key for one stand-in node."""
    return "bench-" + secrets.token_hex(16)


# -- statistics -----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """Median of ``values`` (NaN when empty)."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


# -- child processes --------------------------------------------------------------------------------


@dataclass
class Measured:
    """One finished child process: exit code, wall time, peak RSS and its output."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    cpu_s: float = float("nan")  # user + system CPU seconds (with GNU time only)

    def json(self) -> dict[str, Any]:
        """The last stdout line parsed as JSON (workers print their result there)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if self.returncode != 0 or not lines:
            tail = self.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"worker failed (exit {self.returncode}): {' | '.join(tail)}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


def run_measured(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
) -> Measured:
    """Run ``argv`` to completion: its wall time and its own peak RSS.

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``), which forks the
    command from a small process: the kernel's ``ru_maxrss`` survives ``exec``, so
    a child forked straight from this (large) Python process would report our
    size, not its own. Without GNU time, the child's RSS is sampled every 5 ms
    with psutil instead. Output goes to temp files, so a chatty child never
    blocks; a child still running after ``timeout`` is killed.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(4)
    out_path, err_path, rss_path = (WORK / f".{kind}-{tag}" for kind in ("out", "err", "rss"))
    use_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-q", "-f", "%M %U %S", "-o", str(rss_path), *argv] if use_time else list(argv)
    peak_kib = 0.0
    cpu = float("nan")
    try:
        with open(out_path, "w+b") as out, open(err_path, "w+b") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
            sampler: _RssSampler | None = None
            if not use_time:
                sampler = _RssSampler(proc.pid)
                sampler.start()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            finally:
                if sampler is not None:
                    sampler.stop()
                    peak_kib = sampler.peak / 1024
            wall = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        if use_time:
            lines = rss_path.read_text().strip().splitlines() if rss_path.exists() else []
            fields = lines[-1].split() if lines else []
            try:
                peak_kib, cpu = float(fields[0]), float(fields[1]) + float(fields[2])
            except (IndexError, ValueError):
                peak_kib = float("nan")
    finally:
        for p in (out_path, err_path, rss_path):
            p.unlink(missing_ok=True)
    return Measured(proc.returncode, wall, peak_kib / 1024.0, stdout, stderr, cpu)


GNU_TIME = "/usr/bin/time"


class _RssSampler(threading.Thread):
    """Samples a process's RSS every 5 ms and keeps the peak (fallback without GNU time)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            while not self._stop_event.is_set():
                self.peak = max(self.peak, proc.memory_info().rss)
                self._stop_event.wait(0.005)
        except psutil.Error:
            return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def child_env(api_key: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a child: ours, plus the API key in :data:`KEY_ENV` and ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH", "")]))
    if api_key is not None:
        env[KEY_ENV] = api_key
    env.update(extra)
    return env


class CpuMeter:
    """CPU seconds (user + system) a running process (a stand-in node) used between two reads."""

    def __init__(self, pid: int | None) -> None:
        self.proc = psutil.Process(pid) if pid else None

    def cpu_s(self) -> float:
        """Total CPU seconds so far (threads included)."""
        if self.proc is None:
            return 0.0
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def rss_mb(self) -> float:
        """Current RSS in MB."""
        return self.proc.memory_info().rss / MIB if self.proc is not None else 0.0


# -- work dirs ----------------------------------------------------------------------------------------


@contextmanager
def work_dir(name: str) -> Iterator[Path]:
    """A fresh directory ``bench/work/<name>``, removed afterwards whatever happens."""
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_gib(path: Path) -> float:
    """Free disk space where ``path`` lives, in GiB."""
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free / 1024**3


def write_project(projects_dir: Path, key: str, scenarios: dict[str, list[dict[str, Any]]]) -> Path:
    """Write a minimal project folder (``scenarios``: id -> steps) into a node's ``projects/``."""
    root = projects_dir / key
    (root / "scenarios").mkdir(parents=True, exist_ok=True)
    (root / "project.json").write_text(
        json.dumps({"projectKey": key, "name": f"bench {key}", "owner": "bench", "connections": []})
    )
    (root / "variables.json").write_text(json.dumps({"standard": {}, "local": {}}))
    for sid, steps in scenarios.items():
        (root / "scenarios" / f"{sid}.json").write_text(
            json.dumps({"id": sid, "name": sid, "markedAsTest": sid.startswith("TEST_"), "active": False,
                        "steps": steps})
        )  # fmt: skip
    return root


# -- machine and results --------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM, Python, OS, date and git commit of this run."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    return {
        "CPU": cpu,
        "cores": f"{psutil.cpu_count(logical=False)} physical / {psutil.cpu_count(logical=True)} logical",
        "RAM": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "Python": platform.python_version(),
        "OS": os_name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "git commit": (commit or "unknown") + (" (+ uncommitted changes)" if dirty else ""),
        "load average at start (1/5/15 min)": load_average(),
    }


def load_average() -> str:
    """The machine's load averages: other jobs on a shared build machine skew every figure."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


@dataclass
class Verdict:
    """One target: what was asked, the figure measured, and whether it was met."""

    benchmark: str
    target: str
    figure: str
    met: bool | None  # None: not measured

    def cell(self) -> str:
        """The met / not met cell of the summary table."""
        return {True: "**met**", False: "**not met**", None: "not measured"}[self.met]


@dataclass
class Section:
    """The results of one benchmark: its verdicts, tables in markdown and notes."""

    title: str
    verdicts: list[Verdict] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def fmt(value: float, digits: int = 1) -> str:
    """A number for a table (``n/a`` for NaN)."""
    return "n/a" if value != value else f"{value:.{digits}f}"
