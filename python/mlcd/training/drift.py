"""The drift trigger of `mlcd retrain --if-drift`: read a dataset metric the project computes, compare.

DSS answers ``GET /projects/{key}/datasets/{name}/metrics/last/NP`` with
``{"metrics": [{"metric": {"id": ...}, "lastValues": [{"partition": "NP", "value": "0.31"}]}]}``
(dataikuapi ``dss/dataset.py`` ``get_last_metric_values``, ``dss/metrics.py``
``ComputedMetrics``: values are strings; the global one is partition ``NP`` or ``ALL``).
:func:`drift_value` and :func:`should_retrain` are plain functions of that answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlcd.errors import InputError


@dataclass(frozen=True)
class DriftConfig:
    """``continuous_training.drift``: which dataset metric measures drift, and above what it retrains."""

    dataset: str
    metric: str
    threshold: float


def metric_ids(computed: Any) -> list[str]:
    """The metric ids of a ComputedMetrics answer."""
    items = computed.get("metrics") if isinstance(computed, dict) else None
    return [
        str(m["metric"]["id"])
        for m in items or []
        if isinstance(m, dict) and isinstance(m.get("metric"), dict)
    ]


def drift_value(computed: Any, metric: str) -> float | None:
    """The global (``NP``/``ALL``) last value of ``metric`` as a finite float; None when it has none.

    Raises KeyError when the answer has no such metric.
    """
    for item in computed.get("metrics") or [] if isinstance(computed, dict) else []:
        if not isinstance(item, dict) or (item.get("metric") or {}).get("id") != metric:
            continue
        for point in item.get("lastValues") or []:
            if isinstance(point, dict) and point.get("partition") in ("NP", "ALL"):
                try:
                    value = float(str(point.get("value")))
                except (TypeError, ValueError):
                    return None
                return value if math.isfinite(value) else None
        return None
    raise KeyError(metric)


def should_retrain(value: float | None, threshold: float) -> tuple[bool, str]:
    """Retrain when the drift is above the threshold (a missing value does not retrain); and why."""
    if value is None:
        return False, "the drift metric has no computed value: no retrain (compute the metric in DSS first)"
    if value > threshold:
        return True, f"drift {value:g} is above the threshold {threshold:g}: retraining"
    return False, f"drift {value:g} is not above the threshold {threshold:g}: no retrain"


def read_drift(computed: Any, drift: DriftConfig, where: str) -> float | None:
    """The drift value of an answer; InputError (exit 2) naming the metrics there when it lacks the metric."""
    try:
        return drift_value(computed, drift.metric)
    except KeyError:
        ids = metric_ids(computed)
        raise InputError(
            f"dataset {drift.dataset} has no metric {drift.metric} {where}",
            f"set continuous_training.drift.metric to one of: {', '.join(ids) or '(none computed)'}",
        ) from None
