"""Champion/challenger rules as plain functions: directions, ties, missing metrics, NaN, floors."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mlcd.training.champion import HIGHER, LOWER, ModelGate, direction_problem, judge, numeric_metrics

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
margin = st.floats(min_value=0, max_value=1e3, allow_nan=False, allow_infinity=False)
directions = st.sampled_from([HIGHER, LOWER])
not_a_number = st.sampled_from([math.nan, math.inf, -math.inf, None, "0.9", True])


def gate(direction: str = HIGHER, **kw: float | None) -> ModelGate:
    return ModelGate("churn", "score", direction, **kw)  # type: ignore[arg-type]


def test_examples_a_person_would_check() -> None:
    auc = ModelGate("churn", "auc", HIGHER, min_improvement=0.01, floor=0.7)
    assert judge(auc, {"auc": 0.82}, {"auc": 0.80}).promote
    assert judge(auc, {"auc": 0.81}, {"auc": 0.80}).promote  # 0.81-0.80 is 0.00999...
    assert not judge(auc, {"auc": 0.805}, {"auc": 0.80}).promote
    below = judge(auc, {"auc": 0.65}, None)
    assert not below.promote and "floor 0.7" in below.reason
    rmse = ModelGate("price", "rmse", LOWER, max_regression=0.5)
    assert judge(rmse, {"rmse": 10.4}, {"rmse": 10.0}).promote
    assert not judge(rmse, {"rmse": 10.6}, {"rmse": 10.0}).promote


def test_missing_metric_is_named() -> None:
    verdict = judge(gate(), {"other": 1.0}, {"score": 0.5})
    assert not verdict.promote and verdict.reason == "the challenger reports no finite score"
    champion_without = judge(gate(), {"score": 1.0}, {"other": 0.5})
    assert not champion_without.promote and "champion reports no finite score" in champion_without.reason


def test_direction_problems() -> None:
    assert direction_problem("rmse", HIGHER) == "a lower rmse is better, not a higher one"
    assert direction_problem("auc", None) is None
    assert "does not know" in str(direction_problem("customScore", None))
    assert direction_problem("customScore", LOWER) is None


def test_numeric_metrics_keep_only_finite_numbers() -> None:
    snippet = {"auc": 0.8, "f1": math.nan, "algorithm": "RF", "trainDate": 1, "flag": True}
    assert numeric_metrics(snippet) == {"auc": 0.8, "trainDate": 1.0}


@given(directions, finite, finite, margin)
def test_flipping_direction_and_sign_decides_the_same(d: str, new: float, old: float, m: float) -> None:
    other = LOWER if d == HIGHER else HIGHER
    for kw in ({"min_improvement": m}, {"max_regression": m}, {}):
        a = judge(gate(d, **kw), {"score": new}, {"score": old})
        b = judge(gate(other, **kw), {"score": -new}, {"score": -old})
        assert a.promote == b.promote


@given(directions, finite, margin)
def test_a_tie_never_beats_the_champion(d: str, value: float, m: float) -> None:
    assert not judge(gate(d, min_improvement=m), {"score": value}, {"score": value}).promote
    assert not judge(gate(d), {"score": value}, {"score": value}).promote


@given(directions, finite, margin)
def test_a_tie_is_within_any_allowed_regression(d: str, value: float, m: float) -> None:
    assert judge(gate(d, max_regression=m), {"score": value}, {"score": value}).promote


@given(directions, not_a_number, finite, finite)
def test_a_missing_or_nan_challenger_never_promotes(d: str, bad: object, old: float, floor: float) -> None:
    for champion in ({"score": old}, None, {}):
        assert not judge(gate(d), {"score": bad}, champion).promote
        assert not judge(gate(d, max_regression=1e9), {"score": bad}, champion).promote
        assert not judge(gate(d, floor=floor), {"score": bad}, champion).promote


@given(directions, finite, not_a_number)
def test_a_nan_champion_is_never_beaten(d: str, new: float, bad: object) -> None:
    assert not judge(gate(d, max_regression=1e9), {"score": new}, {"score": bad}).promote


@given(directions, finite, finite, finite)
def test_below_the_floor_never_promotes(d: str, new: float, old: float, floor: float) -> None:
    tol = 1e-6 * max(1.0, abs(floor))
    clearly_worse = new < floor - tol if d == HIGHER else new > floor + tol
    clearly_ok = new > floor + tol if d == HIGHER else new < floor - tol
    verdict = judge(gate(d, floor=floor, max_regression=1e9), {"score": new}, {"score": old})
    if clearly_worse:
        assert not verdict.promote
    if clearly_ok:
        assert verdict.promote


@given(directions, finite, finite, finite, margin)
def test_a_better_challenger_is_promoted_whenever_a_worse_one_is(
    d: str, a: float, b: float, old: float, m: float
) -> None:
    worse, better = (min(a, b), max(a, b)) if d == HIGHER else (max(a, b), min(a, b))
    for kw in ({"min_improvement": m}, {"max_regression": m}, {}):
        if judge(gate(d, **kw), {"score": worse}, {"score": old}).promote:
            assert judge(gate(d, **kw), {"score": better}, {"score": old}).promote


@given(directions, finite, finite)
def test_the_first_version_needs_only_the_floor(d: str, new: float, floor: float) -> None:
    tol = 1e-6 * max(1.0, abs(floor))
    clearly_worse = new < floor - tol if d == HIGHER else new > floor + tol
    clearly_ok = new > floor + tol if d == HIGHER else new < floor - tol
    verdict = judge(gate(d, floor=floor), {"score": new}, None)
    if clearly_worse:
        assert not verdict.promote
    if clearly_ok:
        assert verdict.promote
    assert judge(gate(d), {"score": new}, None).promote


def test_the_challenger_is_the_version_trained_last_whatever_the_list_order() -> None:
    from mlcd.dss.savedmodels import Version
    from mlcd.training.retrain import newest

    versions = [Version("b", False, 300), Version("initial", True, 100), Version("a", False, 200)]
    assert newest(versions, ["b", "a"]) == "b"
    assert (
        newest([Version("x", False, None), Version("y", False, 5)], ["x", "y"]) == "y"
    )  # no dates: list order
