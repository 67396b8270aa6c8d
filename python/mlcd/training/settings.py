"""The ``continuous_training`` section of mlcd.yaml: the retrain scenario and one gate per saved model.

The schema checks the shapes; :func:`training_config` adds what a schema cannot say in
one line: a direction that contradicts the metric's known one, a metric whose direction
is unknown and not given, both ``min_improvement`` and ``max_regression``, a floor that
is not a finite number. Each is one :class:`~mlcd.errors.ConfigError` naming the line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcd.configcheck import path_text
from mlcd.errors import ConfigError
from mlcd.training.champion import HIGHER, KNOWN_DIRECTIONS, LOWER, ModelGate, direction_of, direction_problem
from mlcd.training.drift import DriftConfig

if TYPE_CHECKING:
    from mlcd.configcheck import Located


@dataclass(frozen=True)
class TrainingConfig:
    """``continuous_training``: which scenario retrains, and the gate of each saved model (config order)."""

    retrain_scenario: str
    gates: tuple[ModelGate, ...]
    drift: DriftConfig | None = None  # `--if-drift`

    def gate(self, saved_model: str) -> ModelGate | None:
        """The gate of ``saved_model`` (None when it has none)."""
        return next((g for g in self.gates if g.saved_model == saved_model), None)


def _number(value: Any, where: str, key: str) -> float | None:
    """``value`` as a finite float (None when absent); ``where`` is ``file:line: key.path``."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{where}.{key} must be a finite number, not {value}", f"give {key} as a number")
    return number


def _gate(sm: str, data: dict[str, Any], loc: Located) -> ModelGate:
    path = ("continuous_training", "models", sm)
    where = f"{loc.where(path)}: {path_text(path)}"
    metric = str(data["metric"])
    direction = data.get("direction")
    problem = direction_problem(metric, direction)
    if problem:
        known = direction_of(metric)
        fix = (
            f"remove direction (mlcd knows {metric}), or name the metric you meant"
            if known
            else f"add direction: {HIGHER} or direction: {LOWER} (known: {', '.join(KNOWN_DIRECTIONS)})"
        )
        at = (*path, "direction")
        raise ConfigError(f"{loc.where(at)}: {path_text(at)}: {problem}", fix)
    if data.get("min_improvement") is not None and data.get("max_regression") is not None:
        raise ConfigError(
            f"{where}: give min_improvement or max_regression, not both",
            "keep min_improvement to require a better challenger, max_regression to accept a worse one",
        )
    return ModelGate(
        saved_model=sm,
        metric=metric,
        direction=str(direction or direction_of(metric)),
        min_improvement=_number(data.get("min_improvement"), where, "min_improvement"),
        max_regression=_number(data.get("max_regression"), where, "max_regression"),
        floor=_number(data.get("floor"), where, "floor"),
        evaluation_store=str(data["evaluation_store"]) if data.get("evaluation_store") else None,
    )


def training_config(data: dict[str, Any] | None, loc: Located) -> TrainingConfig | None:
    """The validated ``continuous_training`` section (already schema-checked), or None when absent."""
    if not data:
        return None
    models = data.get("models") or {}
    return TrainingConfig(
        retrain_scenario=str(data["retrain_scenario"]),
        gates=tuple(_gate(str(sm), dict(gate), loc) for sm, gate in models.items()),
        drift=_drift(data.get("drift"), loc),
    )


def _drift(data: dict[str, Any] | None, loc: Located) -> DriftConfig | None:
    if not data:
        return None
    where = f"{loc.where(('continuous_training', 'drift'))}: continuous_training.drift"
    threshold = _number(data["threshold"], where, "threshold")
    return DriftConfig(str(data["dataset"]), str(data["metric"]), float(threshold or 0.0))
