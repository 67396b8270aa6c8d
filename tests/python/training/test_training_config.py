"""`continuous_training` in mlcd.yaml: what a user sees for good and bad gates."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlcd.config import load_config
from mlcd.errors import ConfigError, ExitCode
from mlcd.training.champion import HIGHER, LOWER

BASE = """\
project: CHURN
allow_insecure_http: true
design: {url: http://127.0.0.1:11200, api_key_env: DSS_DESIGN_API_KEY}
environments:
  - {name: prod, url: http://127.0.0.1:11201, api_key_env: DSS_PROD_API_KEY}
"""


def load(tmp_path: Path, section: str) -> object:
    path = tmp_path / "mlcd.yaml"
    path.write_text(BASE + textwrap.dedent(section))
    return load_config(path)


def error(tmp_path: Path, section: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, section)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    return info.value.one_line()


def test_gates_in_config_order_with_known_directions(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        continuous_training:
          retrain_scenario: RETRAIN
          models:
            churn_model: {metric: auc, min_improvement: 0.01, floor: 0.7}
            price_model: {metric: rmse, max_regression: 0.5}
            custom: {metric: customScore, direction: lower}
        """,
    )
    training = config.continuous_training  # type: ignore[attr-defined]
    assert training.retrain_scenario == "RETRAIN"
    assert [(g.saved_model, g.metric, g.direction) for g in training.gates] == [
        ("churn_model", "auc", HIGHER),
        ("price_model", "rmse", LOWER),
        ("custom", "customScore", LOWER),
    ]
    assert training.gate("churn_model").floor == 0.7
    assert training.gate("nope") is None


def test_without_the_section_there_is_no_training(tmp_path: Path) -> None:
    assert load(tmp_path, "").continuous_training is None  # type: ignore[attr-defined]


def test_a_direction_against_the_metric_is_refused_with_its_line(tmp_path: Path) -> None:
    line = error(
        tmp_path,
        """\
        continuous_training:
          retrain_scenario: RETRAIN
          models:
            price_model:
              metric: rmse
              direction: higher
        """,
    )
    assert "mlcd.yaml:11: continuous_training.models.price_model.direction" in line
    assert "a lower rmse is better, not a higher one" in line
    assert "(fix: remove direction" in line


def test_an_unknown_metric_needs_a_direction(tmp_path: Path) -> None:
    line = error(
        tmp_path,
        """\
        continuous_training:
          retrain_scenario: RETRAIN
          models: {m: {metric: customScore}}
        """,
    )
    assert "does not know whether a higher or a lower customScore is better" in line
    assert "add direction: higher or direction: lower" in line


def test_both_margins_are_refused(tmp_path: Path) -> None:
    line = error(
        tmp_path,
        """\
        continuous_training:
          retrain_scenario: RETRAIN
          models: {m: {metric: auc, min_improvement: 0.01, max_regression: 0.01}}
        """,
    )
    assert "give min_improvement or max_regression, not both" in line


@pytest.mark.parametrize(
    ("gate", "needle"),
    [
        ("{metric: auc, min_improvement: -0.01}", "min_improvement"),
        ("{metric: auc, floor: .nan}", "floor must be a finite number"),
        ("{metric: auc, treshold: 1}", "treshold"),
        ("{floor: 1}", "metric"),
    ],
)
def test_bad_gates_are_one_line(tmp_path: Path, gate: str, needle: str) -> None:
    line = error(tmp_path, f"continuous_training: {{retrain_scenario: RETRAIN, models: {{m: {gate}}}}}\n")
    assert needle in line and "\n" not in line and "(fix: " in line


def test_the_drift_trigger(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        continuous_training:
          retrain_scenario: RETRAIN
          drift: {dataset: scored, metric: "python:drift_score", threshold: 0.2}
          models: {m: {metric: auc}}
        """,
    )
    drift = config.continuous_training.drift  # type: ignore[attr-defined]
    assert (drift.dataset, drift.metric, drift.threshold) == ("scored", "python:drift_score", 0.2)
    line = error(
        tmp_path,
        "continuous_training: {retrain_scenario: R, drift: {dataset: d}, models: {m: {metric: auc}}}\n",
    )
    assert "metric" in line and "(fix: " in line
