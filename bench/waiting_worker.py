"""Run several scenarios at once and wait for them, with one client, in its own process.

Usage: ``python bench/waiting_worker.py --client mlcd|dataikuapi --url URL --project KEY
--scenarios A,B,...``; API key from ``$MLCD_BENCH_API_KEY``. Prints one JSON line:
``{"runs": [{"scenario", "outcome", "end_ms", "detected_ms"}...]}`` where
``end_ms`` is the run's end as the node reports it and ``detected_ms`` the wall
clock when this client knew the run had finished.

* mlcd: ``ScenarioWaiter.start_all`` then ``wait`` (default tick). The moment a
  handle gets its result is observed by a thread that looks at the handles every
  5 ms (read-only; mlcd's code is not changed or wrapped).
* dataikuapi: one thread per scenario calling ``run_and_wait(no_fail=True)``, as
  Dataiku's published CI samples do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

KEY_ENV = "MLCD_BENCH_API_KEY"
DEADLINE_S = 600.0


def _now_ms() -> float:
    return time.time() * 1000.0


def _mlcd(url: str, key: str, project: str, sids: list[str]) -> list[dict[str, Any]]:
    from mlcd.dss.node import DSSNode
    from mlcd.dss.waiter import ScenarioWaiter

    node = DSSNode(url, key, name="bench")
    waiter = ScenarioWaiter(node, project)
    handles = waiter.start_all(sids, DEADLINE_S)
    detected: dict[str, float] = {}
    done = threading.Event()

    def observe() -> None:
        while not done.is_set():
            now = _now_ms()
            for h in handles:
                if h.result is not None and h.scenario_id not in detected:
                    detected[h.scenario_id] = now
            done.wait(0.005)

    observer = threading.Thread(target=observe, daemon=True)
    observer.start()
    try:
        results = waiter.wait(handles)
    finally:
        done.set()
        observer.join()
        node.close()
    now = _now_ms()
    return [
        {"scenario": r.scenario_id, "outcome": r.outcome, "end_ms": r.end,
         "detected_ms": detected.get(r.scenario_id, now)}
        for r in results
    ]  # fmt: skip


def _dataikuapi(url: str, key: str, project: str, sids: list[str]) -> list[dict[str, Any]]:
    from dataikuapi import DSSClient

    client = DSSClient(url, key)
    proj = client.get_project(project)
    out: dict[str, dict[str, Any]] = {}
    errors: list[str] = []

    def one(sid: str) -> None:
        try:
            run = proj.get_scenario(sid).run_and_wait(no_fail=True)
            now = _now_ms()
            info = run.run
            out[sid] = {"scenario": sid, "outcome": (info.get("result") or {}).get("outcome"),
                        "end_ms": info.get("end"), "detected_ms": now}  # fmt: skip
        except Exception as exc:  # reported by the parent as a failed worker
            errors.append(f"{sid}: {type(exc).__name__}: {str(exc)[:200]}")

    threads = [threading.Thread(target=one, args=(sid,)) for sid in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return [out[sid] for sid in sids]


def main() -> int:
    """Run the scenarios, wait, print the timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=["mlcd", "dataikuapi"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--scenarios", required=True, help="comma-separated scenario ids")
    args = parser.parse_args()
    key = os.environ.get(KEY_ENV, "")
    if not key:
        print(f"waiting_worker: set {KEY_ENV}", file=sys.stderr)
        return 2
    sids = [s for s in args.scenarios.split(",") if s]
    do = _mlcd if args.client == "mlcd" else _dataikuapi
    runs = do(args.url, key, args.project, sids)
    print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
