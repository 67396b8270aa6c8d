"""Benchmark 3: CLI start-up (`mlcd --version`, `mlcd --help`), which every Jenkins stage pays.

Wall time of the whole process, from spawn to exit, median of ``runs`` runs per
variant (after one unmeasured warm-up run), for the console script and for
``python -m mlcd``. ``python -c pass`` is shown as the floor (interpreter start-up).
The slowest imports of ``mlcd --version`` (``python -X importtime``) are listed.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from benchlib import PYTHON, REPO, Section, Verdict, child_env, fmt, median, percentile, table

TARGET_MS = 150.0


def _time_once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, check=False, timeout=60)
    elapsed = (time.perf_counter() - started) * 1000.0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-2:])} exited {proc.returncode}: {proc.stderr.decode()[-200:]}")
    return elapsed


def slowest_imports(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Top-level imports of ``python -m mlcd --version`` by cumulative time (ms), slowest first."""
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "mlcd", "--version"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    rows: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        try:
            cumulative_us = float(parts[1].strip())
        except ValueError:
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:  # a module imported by mlcd itself, or mlcd's own packages
            rows.append((name.strip(), cumulative_us / 1000.0))
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def run(runs: int) -> Section:
    """Run benchmark 3."""
    section = Section("3. CLI start-up")
    started = time.perf_counter()
    env = child_env()
    script = Path(PYTHON).parent / "mlcd"
    variants: list[tuple[str, list[str]]] = [("python -c pass (floor)", [PYTHON, "-c", "pass"])]
    if script.exists():
        variants += [("mlcd --version", [str(script), "--version"]), ("mlcd --help", [str(script), "--help"])]
    else:
        section.notes.append(f"console script {script} not found: only `python -m mlcd` measured")
    variants += [
        ("python -m mlcd --version", [PYTHON, "-m", "mlcd", "--version"]),
        ("python -m mlcd --help", [PYTHON, "-m", "mlcd", "--help"]),
    ]
    medians: dict[str, float] = {}
    rows = []
    for label, argv in variants:
        _time_once(argv, env)  # warm-up: page cache, .pyc
        samples = [_time_once(argv, env) for _ in range(runs)]
        medians[label] = median(samples)
        rows.append(
            [label, runs, fmt(median(samples), 1), fmt(percentile(samples, 95), 1), fmt(min(samples), 1)]
        )
    section.body += table(["command", "runs", "median ms", "p95 ms", "min ms"], rows)
    for label in medians:
        if label.startswith("python -c"):
            continue
        section.verdicts.append(
            Verdict("3. start-up", f"`{label}` median < {TARGET_MS:.0f} ms", f"{medians[label]:.0f} ms",
                    medians[label] < TARGET_MS)
        )  # fmt: skip
    imports = slowest_imports(env)
    if imports:
        section.body += [
            "",
            "Slowest imports of `python -m mlcd --version` (cumulative, `-X importtime`):",
            "",
        ]
        section.body += table(["module", "ms"], [[name, fmt(ms, 1)] for name, ms in imports])
    section.seconds = time.perf_counter() - started
    return section
