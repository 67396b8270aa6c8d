"""Champion/challenger decisions, as plain functions of numbers (no node, no I/O).

A :class:`ModelGate` says which metric decides (its direction known: higher or
lower is better), how much better the challenger must be (``min_improvement``)
or how much worse it may be (``max_regression``), and an absolute ``floor``.
:func:`judge` compares a challenger's metrics with the champion's and returns a
:class:`Verdict` saying whether to promote it and why, in words a person reads
in the audit trail. A missing or non-finite metric never promotes; a tie never
promotes under ``min_improvement`` (the challenger must *beat* the champion).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HIGHER = "higher"
LOWER = "lower"

# metric names as DSS reports them in a saved-model version's performance metrics (the version
# snippet minus its non-metric keys, dataikuapi DSSTrainedPredictionModelDetails.get_performance_metrics)
KNOWN_DIRECTIONS: dict[str, str] = {
    # classification
    "auc": HIGHER,
    "f1": HIGHER,
    "accuracy": HIGHER,
    "precision": HIGHER,
    "recall": HIGHER,
    "mcc": HIGHER,
    "lift": HIGHER,
    "averagePrecision": HIGHER,
    "mrocAuc": HIGHER,
    "costMatrixGain": HIGHER,
    "logLoss": LOWER,
    "hammingLoss": LOWER,
    "calibrationLoss": LOWER,
    # regression
    "r2": HIGHER,
    "pearson": HIGHER,
    "evs": HIGHER,
    "mae": LOWER,
    "mse": LOWER,
    "rmse": LOWER,
    "rmsle": LOWER,
    "mape": LOWER,
}

# relative tolerance of comparisons: 0.81 - 0.80 >= 0.01 must hold although floats say 0.00999...
_REL_TOL = 1e-9


@dataclass(frozen=True)
class ModelGate:
    """The gate of one saved model (``continuous_training.models.<id>`` of mlcd.yaml)."""

    saved_model: str
    metric: str
    direction: str  # HIGHER | LOWER
    min_improvement: float | None = None  # the challenger must beat the champion by more than 0 and this
    max_regression: float | None = None  # the challenger may be worse than the champion by at most this
    floor: float | None = None  # the challenger must be at least this good, whatever the champion
    evaluation_store: str | None = None  # compare both versions' latest evaluations in this store

    def describe(self) -> str:
        """The rule in words, e.g. ``auc (higher is better): beat the champion by >= 0.01, floor 0.7``."""
        if self.max_regression is not None:
            rule = f"at most {self.max_regression:g} worse than the champion"
        elif self.min_improvement:
            rule = f"better than the champion by at least {self.min_improvement:g}"
        else:
            rule = "better than the champion"
        floor = f", and no worse than {self.floor:g}" if self.floor is not None else ""
        return f"{self.metric} ({self.direction} is better): {rule}{floor}"


@dataclass(frozen=True)
class Verdict:
    """Whether the challenger is promoted, why, and the numbers compared."""

    promote: bool
    reason: str
    challenger: float | None
    champion: float | None
    gain: float | None  # challenger minus champion, signed so that > 0 is better

    def as_dict(self) -> dict[str, Any]:
        """For stage files and audit details."""
        return {
            "promote": self.promote,
            "reason": self.reason,
            "challenger": self.challenger,
            "champion": self.champion,
            "gain": self.gain,
        }


def direction_of(metric: str) -> str | None:
    """The known direction of ``metric`` (None for a metric mlcd does not know: the config must say)."""
    return KNOWN_DIRECTIONS.get(metric)


def direction_problem(metric: str, direction: str | None) -> str | None:
    """Why ``direction`` cannot be used for ``metric`` (None when it can)."""
    known = direction_of(metric)
    if direction is None:
        if known is None:
            return f"mlcd does not know whether a higher or a lower {metric} is better"
        return None
    if direction not in (HIGHER, LOWER):
        return f"direction must be '{HIGHER}' or '{LOWER}', not '{direction}'"
    if known is not None and known != direction:
        return f"a {known} {metric} is better, not a {direction} one"
    return None


def metric_value(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    """``metrics[metric]`` as a finite float; None when missing, not a number, NaN or infinite."""
    if not metrics:
        return None
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def numeric_metrics(snippet: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries of a version's metrics (what can be compared), by name."""
    out: dict[str, float] = {}
    for name in snippet:
        number = metric_value(snippet, name)
        if number is not None and isinstance(name, str):
            out[name] = number
    return dict(sorted(out.items()))


def gain_of(direction: str, challenger: float, champion: float) -> float:
    """How much better the challenger is (negative: worse), whatever the metric's direction."""
    return challenger - champion if direction == HIGHER else champion - challenger


def at_least(value: float, bound: float, scale: float) -> bool:
    """``value >= bound`` up to the float rounding of numbers of size ``scale``."""
    return value >= bound - _REL_TOL * max(1.0, abs(scale))


def meets_floor(gate: ModelGate, value: float) -> bool:
    """Whether ``value`` is no worse than the gate's floor (True without a floor)."""
    if gate.floor is None:
        return True
    return at_least(gain_of(gate.direction, value, gate.floor), 0.0, max(abs(value), abs(gate.floor)))


def judge(
    gate: ModelGate, challenger: Mapping[str, Any] | None, champion: Mapping[str, Any] | None
) -> Verdict:
    """Promote the challenger or keep the champion (see the module doc).

    ``champion`` None: there is no champion (the first version), only the floor applies.
    """
    metric = gate.metric
    new = metric_value(challenger, metric)
    if new is None:
        return Verdict(False, f"the challenger reports no finite {metric}", None, None, None)
    if not meets_floor(gate, new):
        return Verdict(False, f"the challenger's {metric} {new:g} is worse than the floor {gate.floor:g}",
                       new, metric_value(champion, metric), None)  # fmt: skip
    if champion is None:
        why = f"no champion; the challenger's {metric} {new:g} meets the floor"
        return Verdict(True, why, new, None, None)
    old = metric_value(champion, metric)
    if old is None:
        return Verdict(False, f"the champion reports no finite {metric}: cannot compare", new, None, None)
    gain = gain_of(gate.direction, new, old)
    scale = max(abs(new), abs(old))
    words = f"{metric} {new:g} vs champion {old:g}"
    if gate.max_regression is not None:
        ok = at_least(gain, -gate.max_regression, scale)
        why = f"{words}: {'within' if ok else 'worse than'} the allowed regression {gate.max_regression:g}"
        return Verdict(ok, why, new, old, gain)
    needed = gate.min_improvement or 0.0
    # strictly better (beyond float rounding), and by the margin: a tie never promotes
    ok = gain > _REL_TOL * max(1.0, scale) and at_least(gain, needed, scale)
    why = f"{words}: {'beats' if ok else 'does not beat'} the champion" + (
        f" by at least {needed:g}" if needed > 0 else ""
    )
    return Verdict(ok, why, new, old, gain)
