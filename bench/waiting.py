"""Benchmark 2: waiting on ten scenarios run at once (durations spread from 1 s to ``max_s``).

mlcd's ``ScenarioWaiter`` and dataikuapi's ``run_and_wait`` (one thread per scenario)
each get their own stand-in design node with the same project, and run at the same
time (waiting is idle work; this halves the benchmark's duration). Per run: detection
latency = when the client knew - the run's ``end`` on the node (both epoch ms, same
host clock). Per repetition: HTTP requests the node received (``/__sim__/stats``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH_DIR,
    PYTHON,
    CpuMeter,
    Measured,
    Section,
    Verdict,
    child_env,
    fmt,
    median,
    new_key,
    percentile,
    run_measured,
    table,
    work_dir,
    write_project,
)

from mlcd.sim.launcher import SimNode

PROJECT = "WAITING"
CLIENTS = ("mlcd", "dataikuapi")
N_SCENARIOS = 10


def durations(max_s: float, n: int = N_SCENARIOS) -> list[float]:
    """``n`` durations spread evenly from 1 s to ``max_s``."""
    return [round(1.0 + (max_s - 1.0) * i / (n - 1), 2) for i in range(n)]


def _project(data_dir: Path, secs: list[float]) -> list[str]:
    sids = [f"WAIT_{i:02d}" for i in range(len(secs))]
    write_project(
        data_dir / "projects",
        PROJECT,
        {
            sid: [{"id": "pause", "name": f"wait {s:g}s", "type": "wait", "seconds": s}]
            for sid, s in zip(sids, secs, strict=True)
        },
    )
    return sids


def _worker(client: str, node: SimNode, sids: list[str], timeout: float, out: dict[str, Measured]) -> None:
    argv = [PYTHON, str(BENCH_DIR / "waiting_worker.py"), "--client", client, "--url", node.url,
            "--project", PROJECT, "--scenarios", ",".join(sids)]  # fmt: skip
    out[client] = run_measured(argv, env=child_env(node.api_key), timeout=timeout)


def run(max_s: float, reps: int) -> Section:
    """Run benchmark 2: ``reps`` repetitions, both clients side by side each time."""
    section = Section("2. Waiting on scenarios")
    started = time.perf_counter()
    secs = durations(max_s)
    latencies: dict[str, list[float]] = {c: [] for c in CLIENTS}
    requests: dict[str, list[int]] = {c: [] for c in CLIENTS}
    node_cpu: dict[str, list[float]] = {c: [] for c in CLIENTS}
    wall: dict[str, list[float]] = {c: [] for c in CLIENTS}
    by_route: dict[str, dict[str, int]] = {c: {} for c in CLIENTS}
    with work_dir("waiting") as work:
        nodes: dict[str, SimNode] = {}
        try:
            for c in CLIENTS:
                sids = _project(work / c, secs)
                nodes[c] = SimNode.start("design", work / c, api_key=new_key(), node_name=f"design-{c}")
            for _ in range(reps):
                outcome: dict[str, Measured] = {}
                cpu0: dict[str, float] = {}
                for c in CLIENTS:
                    nodes[c].reset_stats()
                    cpu0[c] = CpuMeter(nodes[c].pid).cpu_s()

                threads = [
                    threading.Thread(target=_worker, args=(c, nodes[c], sids, max_s * 4 + 60, outcome))
                    for c in CLIENTS
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for c in CLIENTS:
                    runs: list[dict[str, Any]] = outcome[c].json()["runs"]
                    bad = [r for r in runs if r["outcome"] != "SUCCESS" or not r["end_ms"]]
                    if bad:
                        raise RuntimeError(f"{c}: runs did not succeed: {bad[:2]}")
                    latencies[c] += [(r["detected_ms"] - r["end_ms"]) / 1000.0 for r in runs]
                    stats = nodes[c].stats()
                    requests[c].append(int(stats.get("total", 0)))
                    for route, count in (stats.get("routes") or {}).items():
                        by_route[c][route] = by_route[c].get(route, 0) + int(count)
                    node_cpu[c].append(CpuMeter(nodes[c].pid).cpu_s() - cpu0[c])
                    wall[c].append(outcome[c].wall_s)
        finally:
            for n in nodes.values():
                n.stop()
    rows = []
    for c in CLIENTS:
        lat = latencies[c]
        rows.append([c, len(lat), fmt(median(lat), 3), fmt(percentile(lat, 95), 3), fmt(max(lat), 3),
                     fmt(median([float(r) for r in requests[c]]), 0), fmt(median(wall[c]), 1),
                     fmt(median(node_cpu[c]), 2)])  # fmt: skip
    section.body += [
        f"Scenario durations (wait steps, s): {', '.join(f'{s:g}' for s in secs)}; {reps} repetition(s); "
        "each client on its own stand-in node, both clients at the same time.",
        "",
    ]
    section.body += table(
        ["client", "runs", "median latency s", "p95 latency s", "max latency s",
         "HTTP requests per repetition (median)", "wall s (median)", "stand-in CPU s"],
        rows,
    )  # fmt: skip
    routes = sorted(set(by_route["mlcd"]) | set(by_route["dataikuapi"]))
    section.body += ["", f"Requests by route, summed over the {reps} repetition(s):", ""]
    section.body += table(
        ["route", *CLIENTS], [[f"`{r}`", *(by_route[c].get(r, 0) for c in CLIENTS)] for r in routes]
    )
    p95 = percentile(latencies["mlcd"], 95)
    count = len(latencies["mlcd"])
    section.verdicts.append(
        Verdict("2. waiting", "mlcd p95 detection latency <= 1 s", f"{p95:.3f} s (n={count})", p95 <= 1.0)
    )
    m_req = median([float(r) for r in requests["mlcd"]])
    d_req = median([float(r) for r in requests["dataikuapi"]])
    section.verdicts.append(
        Verdict("2. waiting", "mlcd requests <= 1/3 of dataikuapi's",
                f"{m_req:.0f} vs {d_req:.0f} ({m_req / d_req:.2f}x)", m_req * 3 <= d_req)
    )  # fmt: skip
    if max_s < 60:
        section.notes.append(f"Shortened spread: 1 s to {max_s:g} s instead of 1 s to 60 s.")
    section.notes.append(
        "mlcd polls one scenario list per tick (1 s); dataikuapi polls get-run-for-trigger per scenario "
        "with a backoff from 0.2 s growing 1.1x per poll up to 15 s."
    )
    section.seconds = time.perf_counter() - started
    return section
