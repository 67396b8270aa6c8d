"""`mlcd retrain --env prod` over real sockets: a stand-in automation node with a deployed project.

The project (SAMPLE plus saved model ``churn_model`` and scenario RETRAIN) is bundled
and deployed once per module; each test seeds the saved model's state and the next
training's metrics through the stand-in's test control, runs the real CLI, and checks
what a user sees: the exit code, the one error line, the active version read on the
node, the stage file and the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from trainproject import RETRAIN, SAVED_MODEL, retrain_project

from support.pipeline_env import PipelineEnv, start_pipeline_env

GATE = {"metric": "auc", "min_improvement": 0.01, "floor": 0.7}


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineEnv]:
    root = tmp_path_factory.mktemp("retrain")
    project = retrain_project(root / "fixture")
    with start_pipeline_env(root / "pipe", envs=("prod",), project=project) as p:
        p.env["MLCD_LOCK_DIR"] = str(root / "locks")
        for args in (("bundle", "--build-number", "1"), ("deploy", "--env", "prod")):
            proc = p.mlcd(*args)
            assert proc.returncode == 0, proc.stderr
        yield p


@pytest.fixture
def env(pipe: PipelineEnv, tmp_path: Path) -> PipelineEnv:
    """The module's pipeline with the default gate, a fresh out dir and the champion at auc 0.80."""
    pipe.config["continuous_training"] = {"retrain_scenario": RETRAIN, "models": {SAVED_MODEL: dict(GATE)}}
    pipe.write_config()
    pipe.env["MLCD_OUT_DIR"] = str(tmp_path / "out")
    pipe.out_dir = tmp_path / "out"
    seed(pipe)
    return pipe


def control(pipe: PipelineEnv, method: str, path: str, body: Any = None) -> Any:
    node = pipe.automation["prod"]
    resp = requests.request(method, f"{node.url}/__sim__/savedmodels/SAMPLE/{SAVED_MODEL}{path}",
                            json=body, auth=(node.api_key, ""), timeout=10)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return resp.json()


def seed(pipe: PipelineEnv, auc: float = 0.80, **extra: Any) -> None:
    champion = {"id": "initial", "snippet": {"auc": auc, "f1": 0.7, "logLoss": 0.45}}
    control(pipe, "PUT", "", {"versions": [champion], "activeVersion": "initial", **extra})


def next_training(pipe: PipelineEnv, **knob: Any) -> None:
    control(pipe, "PUT", "/next-training", knob)


def state(pipe: PipelineEnv) -> dict[str, Any]:
    data: dict[str, Any] = control(pipe, "GET", "")
    return data


def retrain(pipe: PipelineEnv, *args: str) -> tuple[int, str, dict[str, Any]]:
    proc = pipe.mlcd("retrain", "--env", "prod", *args)
    stage_path = pipe.out_dir / "retrain-prod.json"
    stage = json.loads(stage_path.read_text()) if stage_path.exists() else {}
    return proc.returncode, proc.stderr, stage


def audit(pipe: PipelineEnv, operation: str) -> list[dict[str, Any]]:
    return [r for r in pipe.audit_records() if r["operation"] == operation]


def newest(pipe: PipelineEnv) -> str:
    return str(state(pipe)["versions"][-1]["id"])


@pytest.mark.parametrize("training_activates", [True, False])
def test_a_winning_challenger_is_promoted_and_verified(env: PipelineEnv, training_activates: bool) -> None:
    next_training(env, metrics={"auc": 0.86, "f1": 0.75}, activate=training_activates)
    code, err, stage = retrain(env)
    assert code == 0, err
    new = newest(env)
    assert state(env)["activeVersion"] == new != "initial"
    model = stage["details"]["models"][0]
    assert (model["champion"], model["challenger"]) == (
        {"version": "initial", "value": 0.80},
        {"version": new, "value": 0.86},
    )
    assert stage["outcome"] == "SUCCESS" and model["activeVersion"] == new
    assert [r["outcome"] for r in audit(env, "set_active_version")] == (
        [] if training_activates else ["SUCCESS"]
    )
    assert [r["detail"]["active"] for r in audit(env, "verify_active_version")] == [new]
    junit = (env.out_dir / "reports" / "prod" / "retrain.xml").read_text()
    assert (
        'tests="3" failures="0"' in junit and f"challenger: {new} = 0.86" in junit
    )  # scenario, model, smoke
    assert [s["scenario"] for s in stage["details"]["smoke"]] == ["TEST_SMOKE"]
    html = (env.out_dir / "reports" / "prod" / "retrain.html").read_text()
    assert "<script" not in html and "style=" not in html and f"<td>{new}</td><td>0.86</td>" in html
    assert stage["links"]["report"].endswith("retrain.html")
    (final,) = audit(env, "deployment")
    assert (
        final["outcome"] == "SUCCEEDED"
        and f"challenger {new} promoted over initial" in final["detail"]["message"]
    )


def test_a_challenger_the_training_activated_that_loses_is_reverted(env: PipelineEnv) -> None:
    next_training(env, metrics={"auc": 0.805})  # better, but not by min_improvement 0.01
    code, err, stage = retrain(env)
    assert code == 3
    assert err.count("\n") == 1 and err.startswith("mlcd retrain: error: churn_model: challenger ")
    assert "does not beat the champion by at least 0.01" in err and "champion initial is active again" in err
    assert state(env)["activeVersion"] == "initial" and len(state(env)["versions"]) == 2
    assert stage["outcome"] == "ROLLED_BACK" and stage["details"]["models"][0]["activeVersion"] == "initial"
    junit = (env.out_dir / "reports" / "prod" / "retrain.xml").read_text()
    assert 'failures="1"' in junit and "champion: initial = 0.8" in junit
    assert [r["detail"]["version"] for r in audit(env, "set_active_version")] == ["initial"]
    assert [r["outcome"] for r in audit(env, "model_gate")] == ["FAILED"]
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_ROLLED_BACK"]


def test_a_losing_challenger_left_inactive_keeps_the_champion_untouched(env: PipelineEnv) -> None:
    next_training(env, metrics={"auc": 0.60}, activate=False)
    code, err, stage = retrain(env)
    assert code == 3 and "challenger" in err and "kept out" in err
    assert state(env)["activeVersion"] == "initial"
    assert audit(env, "set_active_version") == []
    assert stage["outcome"] == "GATE_FAILED"
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_UNCHANGED"]


@pytest.mark.slow  # the floor rule is covered without a node in test_champion_rules.py
def test_a_challenger_below_the_floor_loses_even_against_a_worse_champion(env: PipelineEnv) -> None:
    seed(env, auc=0.50)
    next_training(env, metrics={"auc": 0.65})
    code, err, _ = retrain(env)
    assert code == 3 and "auc 0.65 is worse than the floor 0.7" in err
    assert state(env)["activeVersion"] == "initial"


def test_a_failed_retrain_scenario_changes_nothing(env: PipelineEnv) -> None:
    next_training(env, fail="before", message="no rows in the training data")
    code, err, stage = retrain(env)
    assert code == 8 and f"retrain scenario {RETRAIN} ended FAILED" in err and "no rows" in err
    assert state(env)["activeVersion"] == "initial" and len(state(env)["versions"]) == 1
    assert stage["details"]["scenario"]["outcome"] == "FAILED"
    assert [r["outcome"] for r in audit(env, "retrain_scenario")] == ["FAILED"]
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_UNCHANGED"]


def test_a_failed_retrain_that_activated_a_version_is_rolled_back(env: PipelineEnv) -> None:
    next_training(env, metrics={"auc": 0.99}, fail="after")
    code, err, stage = retrain(env)
    assert code == 4 and "champion initial is active again (verified)" in err
    assert state(env)["activeVersion"] == "initial"
    assert stage["outcome"] == "ROLLED_BACK"
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_ROLLED_BACK"]


def test_an_activation_the_node_does_not_keep_is_restored_and_reported(env: PipelineEnv) -> None:
    seed(env, setActiveIgnored=True)
    next_training(env, metrics={"auc": 0.90}, activate=False)
    code, err, _ = retrain(env)
    assert code == 4, err
    assert "is not active after activating it (active: initial)" in err
    assert state(env)["activeVersion"] == "initial"
    assert [r["outcome"] for r in audit(env, "verify_active_version")] == ["FAILED", "SUCCESS"]
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_ROLLED_BACK"]


def test_a_champion_that_cannot_be_restored_needs_a_person(env: PipelineEnv) -> None:
    seed(env, setActiveIgnored=True)
    next_training(env, metrics={"auc": 0.10})  # the training activates a bad version; setActive is ignored
    code, err, stage = retrain(env)
    assert code == 5 and "restoring champion initial failed" in err
    assert state(env)["activeVersion"] == newest(env)
    assert stage["details"]["models"][0]["activeVersion"] == newest(env)
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_NEEDS_ATTENTION"]


BAD_INPUT = [
    ({"models": {"nope": {"metric": "auc"}}},
     f"saved model nope does not exist in project SAMPLE on prod (fix: name one of: {SAVED_MODEL}"),
    ({"models": {SAVED_MODEL: {"metric": "r2"}}},
     "does not report r2 (version initial on prod); it reports: auc, f1, logLoss"),
    ({"retrain_scenario": "NOPE"}, "retrain scenario NOPE does not exist in project SAMPLE on prod"),
    ({"models": {SAVED_MODEL: {"metric": "logLoss", "direction": "higher"}}},
     "a lower logLoss is better, not a higher one"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "needle"), BAD_INPUT)
def test_bad_input_is_one_line_and_changes_nothing(
    env: PipelineEnv, change: dict[str, Any], needle: str
) -> None:
    env.config["continuous_training"].update(change)
    env.write_config()
    code, err, stage = retrain(env)
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert len(state(env)["versions"]) == 1 and state(env)["activeVersion"] == "initial"
    assert audit(env, "retrain_scenario") == [] and audit(env, "deployment") == []
    assert stage["exitCode"] == 2


@pytest.mark.slow  # config errors are covered in test_training_config.py
def test_without_a_continuous_training_section(env: PipelineEnv) -> None:
    del env.config["continuous_training"]
    env.write_config()
    code, err, _ = retrain(env)
    assert code == 2 and "has no continuous_training section" in err
    code, err, _ = retrain(env, "--model", "other")
    assert code == 2


@pytest.mark.reliability
def test_a_node_error_after_training_restores_the_champion(env: PipelineEnv) -> None:
    node = env.automation["prod"]
    plan = {"rules": [{"method": "GET", "path": r"savedmodels/churn_model/versions/(?!initial)[^/]+/snippet$",
                       "status": 400}]}  # fmt: skip
    resp = requests.put(f"{node.url}/__sim__/faults", json=plan, auth=(node.api_key, ""), timeout=10)
    assert resp.status_code == 200, resp.text
    try:
        next_training(env, metrics={"auc": 0.95})  # the training activates it; its metrics cannot be read
        code, err, _ = retrain(env)
    finally:
        requests.delete(f"{node.url}/__sim__/faults", auth=(node.api_key, ""), timeout=10)
    assert code == 4, err
    assert "the retrain stopped: " in err and "champion initial is active again (verified)" in err
    assert state(env)["activeVersion"] == "initial"
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_ROLLED_BACK"]


def set_prod_variable(pipe: PipelineEnv, **standard: Any) -> None:
    node = pipe.automation["prod"]
    url, auth = f"{node.url}/public/api/projects/SAMPLE/variables/", (node.api_key, "")
    variables = requests.get(url, auth=auth, timeout=10).json()
    variables["standard"].update(standard)
    assert requests.put(url, json=variables, auth=auth, timeout=10).status_code < 300


def test_a_promoted_challenger_that_fails_smoke_is_rolled_back(env: PipelineEnv) -> None:
    set_prod_variable(env, fail_smoke=True)
    try:
        next_training(env, metrics={"auc": 0.90}, activate=False)
        code, err, stage = retrain(env)
    finally:
        set_prod_variable(env, fail_smoke=False)
    assert code == 4, err
    assert "smoke failed after promotion" in err and "champion initial is active again (verified)" in err
    assert state(env)["activeVersion"] == "initial"
    assert [s["outcome"] for s in stage["details"]["smoke"]] == ["FAILED"]
    assert [r["detail"]["version"] for r in audit(env, "set_active_version")] == [newest(env), "initial"]
    assert [r["outcome"] for r in audit(env, "deployment")] == ["FAILED_ROLLED_BACK"]


def set_drift(pipe: PipelineEnv, value: float) -> None:
    node = pipe.automation["prod"]
    resp = requests.put(f"{node.url}/__sim__/datasets/SAMPLE/scored/metrics", json={"python:drift": value,
                        "basic:COUNT_RECORDS": 1200}, auth=(node.api_key, ""), timeout=10)  # fmt: skip
    assert resp.status_code == 200, resp.text


def with_drift(pipe: PipelineEnv, metric: str = "python:drift") -> None:
    pipe.config["continuous_training"]["drift"] = {"dataset": "scored", "metric": metric, "threshold": 0.2}
    pipe.write_config()


def test_no_drift_no_retrain_and_it_says_why(env: PipelineEnv) -> None:
    with_drift(env)
    set_drift(env, 0.12)
    proc = env.mlcd("retrain", "--env", "prod", "--if-drift")
    assert proc.returncode == 0, proc.stderr
    assert "drift 0.12 is not above the threshold 0.2: no retrain" in proc.stdout
    stage = env.stage_file("retrain-prod")
    assert stage["outcome"] == "NOOP" and stage["details"]["drift"]["value"] == 0.12
    assert len(state(env)["versions"]) == 1
    assert [r["outcome"] for r in audit(env, "drift_check")] == ["NO_RETRAIN"]
    assert audit(env, "retrain_scenario") == [] and audit(env, "deployment") == []


@pytest.mark.slow  # the rule is covered without a node in test_drift_rules.py; promotion by the tests above
def test_drift_above_the_threshold_retrains(env: PipelineEnv) -> None:
    with_drift(env)
    set_drift(env, 0.35)
    next_training(env, metrics={"auc": 0.86})
    code, err, stage = retrain(env, "--if-drift")
    assert code == 0, err
    assert stage["details"]["drift"]["retrain"] is True
    assert [r["outcome"] for r in audit(env, "drift_check")] == ["RETRAIN"]
    assert state(env)["activeVersion"] == newest(env) != "initial"


def test_drift_bad_input(env: PipelineEnv) -> None:
    code, err, _ = retrain(env, "--if-drift")
    assert code == 2 and "--if-drift needs continuous_training.drift" in err
    with_drift(env, metric="python:nope")
    set_drift(env, 0.5)
    code, err, _ = retrain(env, "--if-drift")
    assert (
        code == 2
        and "has no metric python:nope" in err
        and "one of: basic:COUNT_RECORDS, python:drift" in err
    )
    assert len(state(env)["versions"]) == 1


def seed_store(pipe: PipelineEnv, evaluations: list[dict[str, Any]]) -> None:
    node = pipe.automation["prod"]
    url = f"{node.url}/__sim__/evaluationstores/SAMPLE/holdout"
    resp = requests.put(url, json={"evaluations": evaluations}, auth=(node.api_key, ""), timeout=10)
    assert resp.status_code == 200, resp.text


def test_an_evaluation_store_compares_both_versions_on_the_same_data(env: PipelineEnv) -> None:
    env.config["continuous_training"]["models"][SAVED_MODEL]["evaluation_store"] = "holdout"
    env.write_config()
    seed_store(env, [{"modelFullId": f"S-SAMPLE-{SAVED_MODEL}-initial", "metrics": {"auc": 0.78}}])
    # the training-time score says 0.95; on the store's evaluation data the challenger scores 0.775
    next_training(env, metrics={"auc": 0.95}, evaluation={"store": "holdout", "metrics": {"auc": 0.775}})
    code, err, stage = retrain(env)
    assert code == 3, err
    model = stage["details"]["models"][0]
    assert (model["champion"]["value"], model["challenger"]["value"]) == (0.78, 0.775)
    assert state(env)["activeVersion"] == "initial"


def test_an_evaluation_store_without_the_champion_is_bad_input(env: PipelineEnv) -> None:
    env.config["continuous_training"]["models"][SAVED_MODEL]["evaluation_store"] = "holdout"
    env.write_config()
    seed_store(env, [{"modelFullId": "S-SAMPLE-other-v1", "metrics": {"auc": 0.9}}])
    code, err, _ = retrain(env)
    assert code == 2 and "does not report auc in evaluation store holdout (version initial on prod)" in err
    assert len(state(env)["versions"]) == 1
