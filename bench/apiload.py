"""The API load gate against `wrk` on the API node stand-in (loopback), and its memory at 100,000 requests.

Targets (issue 15): at the same concurrency mlcd's load gate reaches at least 0.8x wrk's requests/s
and its p50 is within 20% of wrk's, so the service, not the measuring tool, sets the numbers; the
gate's peak RSS stays under 100 MB at 100,000 requests. Both tools run as child processes measured
by GNU time (wall, CPU, peak RSS), one after the other, against one API node serving the churn
model; the node's own CPU is read with psutil.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from benchlib import (
    BENCH_DIR,
    CpuMeter,
    Section,
    Verdict,
    child_env,
    fmt,
    new_key,
    run_measured,
    table,
    work_dir,
)

from mlcd.sim.launcher import SimNode

REPO = BENCH_DIR.parent
MODEL = REPO / "examples" / "churn" / "project" / "model" / "churn_model.json"
SERVICE, ENDPOINT = "churn", "predict_churn"
FEATURES = {
    "tenure_months": 12, "monthly_charges_usd": 70.5, "total_charges_usd": 846.0, "support_calls": 2,
    "num_products": 2, "paperless_billing": 1, "contract_one_year": 0, "contract_two_year": 0,
}  # fmt: skip
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _serve_model(node: SimNode) -> str:
    """Put the churn model on the API node through its admin API; the predict URL."""
    base = f"{node.url}/admin/api/services"
    auth = (node.api_key, "")
    package = {"endpoints": {ENDPOINT: {"model": json.loads(MODEL.read_text())}}, "behaviour": {}}
    for url, body in ((f"{base}/", {"serviceId": SERVICE}), (f"{base}/{SERVICE}/generations/v1", package)):
        requests.post(url, json=body, auth=auth, timeout=10).raise_for_status()
    requests.post(f"{base}/{SERVICE}/actions/switchTo/v1", auth=auth, timeout=10).raise_for_status()
    return f"{node.url}/public/api/v1/{SERVICE}/{ENDPOINT}/predict"


def _wrk(url: str, key: str, concurrency: int, seconds: float, folder: Path) -> dict[str, Any]:
    script = folder / "post.lua"
    token = base64.b64encode(f"{key}:".encode()).decode()
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps({'features': FEATURES}))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Basic {token}"\n'
    )
    argv = ["wrk", "-t", str(min(concurrency, 2)), "-c", str(concurrency), "-d", f"{seconds:g}s", "--latency",
            "-s", str(script), url]  # fmt: skip
    m = run_measured(argv, timeout=seconds + 60)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", m.stdout)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", m.stdout, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", m.stdout)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50Ms": float(p50.group(1)) * _UNIT_MS[p50.group(2)] if p50 else float("nan"),
        "cpuS": m.cpu_s, "rssMb": m.peak_rss_mb, "errors": int(errors.group(1)) if errors else 0,
        "raw": m.stdout[-800:],
    }  # fmt: skip


def _mlcd(url: str, key: str, concurrency: int, amount: str) -> dict[str, Any]:
    body = json.dumps({"features": FEATURES})
    argv = [sys.executable, str(BENCH_DIR / "apiload_worker.py"), url, str(concurrency), amount]
    env = child_env(MLCD_BENCH_KEY=key)
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *argv], input=body + "\n", env=env,
                          capture_output=True, text=True, timeout=3600, check=False)  # fmt: skip
    wall = time.perf_counter() - started
    numbers: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    fields = proc.stderr.strip().splitlines()[-1].split() if proc.stderr.strip() else []
    try:
        numbers.update(rssMb=float(fields[0]) / 1024, cpuS=float(fields[1]) + float(fields[2]))
    except (IndexError, ValueError):
        numbers.update(rssMb=float("nan"), cpuS=float("nan"))
    numbers["wallS"] = wall
    return numbers


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median requests/s (its other figures kept with it)."""
    return sorted(runs, key=lambda r: r.get("rps", 0.0))[len(runs) // 2]


def run(
    concurrency: int = 8, seconds: float = 10.0, memory_requests: int = 100_000, rounds: int = 3
) -> Section:
    """The section of bench/results/latest.md: ``rounds`` alternating runs of each tool, medians compared."""
    section = Section("API load gate vs wrk")
    if shutil.which("wrk") is None:
        section.notes.append("wrk is not installed (Debian package wrk): comparison not measured")
        section.verdicts.append(Verdict("API load gate vs wrk", ">= 0.8x rps, p50 within 20%", "n/a", None))
        return section
    key = new_key()
    wrks: list[dict[str, Any]] = []
    ours_runs: list[dict[str, Any]] = []
    with work_dir("apiload") as folder:
        node = SimNode.start("apinode", folder / "apinode", api_key=key)
        try:
            url = _serve_model(node)
            meter = CpuMeter(node.pid)
            for _ in range(rounds):  # alternate, so that a busy neighbour hurts both tools alike
                c0 = meter.cpu_s()
                wrks.append(dict(_wrk(url, key, concurrency, seconds, folder), nodeCpuS=meter.cpu_s() - c0))
                c0 = meter.cpu_s()
                ours = _mlcd(url, key, concurrency, f"duration:{seconds:g}")
                ours_runs.append(dict(ours, nodeCpuS=meter.cpu_s() - c0))
            memory = _mlcd(url, key, concurrency, f"requests:{memory_requests}")
        finally:
            node.stop()
    wrk, ours = _median_run(wrks), _median_run(ours_runs)
    nan = float("nan")
    ratio = ours.get("rps", 0.0) / wrk["rps"] if wrk["rps"] else nan
    ours_p50 = ours.get("p50Ms", nan)
    p50_gap = abs(ours_p50 - wrk["p50Ms"]) / wrk["p50Ms"] if wrk["p50Ms"] else nan
    rows = [
        [name, i + 1, fmt(r.get("rps", nan)), fmt(r.get("p50Ms", nan), 2), fmt(r.get("cpuS", nan), 2),
         fmt(r.get("rssMb", nan)), fmt(r.get("nodeCpuS", nan), 2), r.get("errors", "n/a")]
        for i in range(rounds) for name, r in (("wrk", wrks[i]), ("mlcd load gate", ours_runs[i]))
    ]  # fmt: skip
    section.body += [f"Concurrency {concurrency}, {fmt(seconds)} s per run, runs alternated:", ""]
    section.body += table(
        [
            "tool",
            "round",
            "requests/s",
            "p50 ms",
            "client CPU s",
            "client peak RSS MB",
            "API node CPU s",
            "errors",
        ],
        rows,
    )
    section.body += ["", f"Medians: wrk {fmt(wrk['rps'])} req/s, p50 {fmt(wrk['p50Ms'], 2)} ms; mlcd "
                     f"{fmt(ours.get('rps', nan))} req/s, p50 {fmt(ours_p50, 2)} ms.",
                     "", f"Memory run: {memory.get('requests', 'n/a')} requests at concurrency {concurrency} "
                     f"in {fmt(memory['wallS'])} s, peak RSS {fmt(memory['rssMb'])} MB."]  # fmt: skip
    section.verdicts += [
        Verdict("API load gate throughput", ">= 0.8x wrk requests/s", f"{fmt(ratio, 2)}x", ratio >= 0.8),
        Verdict("API load gate p50", "within 20% of wrk", f"{fmt(p50_gap * 100)}% apart", p50_gap <= 0.2),
        Verdict(f"API load gate memory at {memory_requests} requests", "< 100 MB peak RSS",
                f"{fmt(memory['rssMb'])} MB", memory["rssMb"] < 100),
    ]  # fmt: skip
    section.notes.append(
        "The API node stand-in is Flask's development server (HTTP/1.0: one connection per request) on the "
        "same machine as the client: the client's CPU is taken from the server, so a heavier client lowers "
        "the throughput it can measure."
    )
    return section


if __name__ == "__main__":  # pragma: no cover - `python bench/apiload.py [seconds]` prints the section
    s = run(seconds=float(sys.argv[1]) if len(sys.argv) > 1 else 10.0,
            memory_requests=int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)  # fmt: skip
    lines = [f"{v.benchmark}: {v.figure} ({v.cell()})" for v in s.verdicts]
    print("\n".join([*s.body, "", *lines, *s.notes]))
