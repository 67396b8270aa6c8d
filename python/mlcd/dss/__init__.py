"""The DSS node client: typed errors, retries, streaming transfer, bounded waits.

Import what you need from the submodules (``mlcd.dss.node.DSSNode``, …); the
names below are re-exported for convenience and are loaded lazily so that
``import mlcd.dss`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DSSNode": "mlcd.dss.node",
    "RetryPolicy": "mlcd.dss.http",
    "Transfer": "mlcd.dss.transfer",
    "ScenarioWaiter": "mlcd.dss.waiter",
    "ScenarioResult": "mlcd.dss.waiter",
    "StepResult": "mlcd.dss.waiter",
    "RunHandle": "mlcd.dss.waiter",
    "wait_for_future": "mlcd.dss.futures",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mlcd.dss' has no attribute {name!r}")
