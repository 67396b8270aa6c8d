"""Child process of bench/apiload.py: one run of mlcd's load gate; prints its numbers as JSON.

argv: URL CONCURRENCY (duration:SECONDS | requests:COUNT); the API node key in MLCD_BENCH_KEY,
the request bodies (one JSON line each) on stdin.
"""

from __future__ import annotations

import json
import os
import sys

from mlcd.apiservice.config import LoadGate
from mlcd.apiservice.loadgen import run_load


def main() -> int:
    url, concurrency, amount = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    kind, _, value = amount.partition(":")
    gate = LoadGate(
        concurrency=concurrency,
        p95_ms=600_000,
        duration_s=float(value) if kind == "duration" else None,
        requests=int(value) if kind == "requests" else None,
        max_error_rate=1.0,
    )
    bodies = [line.encode() for line in sys.stdin.read().splitlines() if line.strip()]
    result = run_load(gate, bodies, [url], os.environ["MLCD_BENCH_KEY"], (5.0, 30.0), verify=True)
    numbers = result.numbers()
    numbers.pop("histogram", None)
    numbers.pop("timeline", None)
    print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
