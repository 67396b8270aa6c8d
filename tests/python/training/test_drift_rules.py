"""The drift trigger's rules as plain functions of DSS's ComputedMetrics answer."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlcd.errors import InputError
from mlcd.training.drift import DriftConfig, drift_value, metric_ids, read_drift, should_retrain

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def computed(values: dict[str, Any], partition: str = "NP") -> dict[str, Any]:
    return {"metrics": [{"metric": {"id": k}, "lastValues": [{"partition": partition, "value": v}]}
                        for k, v in values.items()]}  # fmt: skip


def test_values_are_strings_and_the_global_partition_counts() -> None:
    answer = computed({"python:drift": "0.31", "basic:COUNT_RECORDS": "1200"})
    assert drift_value(answer, "python:drift") == 0.31
    assert drift_value(computed({"d": "0.5"}, partition="ALL"), "d") == 0.5
    assert drift_value(computed({"d": "0.5"}, partition="2024-01-01"), "d") is None
    assert metric_ids(answer) == ["python:drift", "basic:COUNT_RECORDS"]


@pytest.mark.parametrize("bad", ["NaN", "inf", "", None, "n/a"])
def test_a_value_that_is_not_a_finite_number_never_retrains(bad: object) -> None:
    value = drift_value(computed({"d": bad}), "d")
    assert value is None or not math.isfinite(value)
    assert should_retrain(value, 0.1)[0] is False


def test_a_missing_metric_names_the_ones_there() -> None:
    with pytest.raises(InputError) as info:
        read_drift(computed({"a:x": "1", "b:y": "2"}), DriftConfig("scored", "c:z", 0.2), "on prod")
    fix = "(fix: set continuous_training.drift.metric to one of: a:x, b:y)"
    assert info.value.one_line() == f"dataset scored has no metric c:z on prod {fix}"


@given(finite, finite)
def test_retrains_exactly_above_the_threshold(value: float, threshold: float) -> None:
    go, why = should_retrain(drift_value(computed({"d": repr(value)}), "d"), threshold)
    assert go == (value > threshold)
    assert ("above" in why) and (go == why.endswith("retraining"))
