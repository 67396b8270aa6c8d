"""The fleet's fan-out: bounded concurrency, results in node order, one node's failure is its result."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from mlcd.release import fleet
from mlcd.release.fleet import MAX_WORKERS, Member, fan_out


def test_fan_out_is_bounded_ordered_and_keeps_each_failure() -> None:
    members = [Member(f"n{i:02d}", cast(Any, None)) for i in range(MAX_WORKERS * 2 + 3)]
    running, peak = 0, 0
    guard = threading.Lock()

    def step(m: Member) -> str:
        nonlocal running, peak
        with guard:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with guard:
            running -= 1
        if m.node == "n05":
            raise RuntimeError("node n05 broke")
        return m.node

    results = fan_out(members, step)
    assert 1 < peak <= fleet.MAX_WORKERS
    assert [r if isinstance(r, str) else "error" for r in results] == [
        "error" if m.node == "n05" else m.node for m in members
    ]
    assert str(results[5]) == "node n05 broke"
