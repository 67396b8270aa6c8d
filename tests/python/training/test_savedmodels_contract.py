"""Contract: dataikuapi's saved-model calls against the stand-in, the shapes its source reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

dataikuapi = pytest.importorskip("dataikuapi")
from dataikuapi.utils import DataikuException  # noqa: E402
from trainproject import RETRAIN, SAVED_MODEL, retrain_project  # noqa: E402

from mlcd.sim.launcher import SimNode  # noqa: E402


@pytest.fixture
def node(tmp_path: Path) -> Iterator[SimNode]:
    retrain_project(tmp_path / "design" / "projects")
    sim = SimNode.start(role="design", data_dir=tmp_path / "design")
    try:
        yield sim
    finally:
        sim.stop()


def knob(node: SimNode, body: dict[str, object]) -> None:
    url = f"{node.url}/__sim__/savedmodels/SAMPLE/{SAVED_MODEL}/next-training"
    resp = requests.put(url, json=body, auth=(node.api_key, ""), timeout=10)
    assert resp.status_code == 200, resp.text


def test_saved_model_versions_metrics_and_activation(node: SimNode) -> None:
    project = dataikuapi.DSSClient(node.url, node.api_key).get_project("SAMPLE")
    assert [m["id"] for m in project.list_saved_models()] == [SAVED_MODEL]
    sm = project.get_saved_model(SAVED_MODEL)
    assert [(v["id"], v["active"]) for v in sm.list_versions()] == [("initial", True)]
    details = sm.get_version_details("initial")
    metrics = details.get_performance_metrics()
    assert metrics["auc"] == 0.80 and "fullModelId" not in metrics and "algorithm" not in metrics

    knob(node, {"metrics": {"auc": 0.86}, "activate": False})
    run = project.get_scenario(RETRAIN).run_and_wait()
    assert run.get_info()["result"]["outcome"] == "SUCCESS"
    versions = sm.list_versions()
    assert [v["active"] for v in versions] == [True, False]
    new = versions[1]["id"]
    assert sm.get_version_details(new).get_performance_metrics()["auc"] == 0.86
    sm.set_active_version(new)
    assert sm.get_active_version()["id"] == new
    with pytest.raises(DataikuException, match="does not exist"):
        sm.set_active_version("nope")
    with pytest.raises(DataikuException, match="does not exist"):
        project.get_saved_model("nope").list_versions()


def test_training_activates_its_version_by_default_and_can_fail(node: SimNode) -> None:
    project = dataikuapi.DSSClient(node.url, node.api_key).get_project("SAMPLE")
    sm = project.get_saved_model(SAVED_MODEL)
    knob(node, {"metrics": {"auc": 0.70}})
    project.get_scenario(RETRAIN).run_and_wait()
    assert sm.get_active_version()["id"] != "initial"
    knob(node, {"fail": "before"})
    with pytest.raises(DataikuException):
        project.get_scenario(RETRAIN).run_and_wait()
    assert len(sm.list_versions()) == 2


def test_evaluation_store_full_info(node: SimNode) -> None:
    project = dataikuapi.DSSClient(node.url, node.api_key).get_project("SAMPLE")
    full_id = f"S-SAMPLE-{SAVED_MODEL}-initial"
    url = f"{node.url}/__sim__/evaluationstores/SAMPLE/holdout"
    body = {"evaluations": [{"modelFullId": full_id, "metrics": {"auc": 0.77}}]}
    assert requests.put(url, json=body, auth=(node.api_key, ""), timeout=10).status_code == 200
    assert (
        project.get_saved_model(SAVED_MODEL).get_version_details("initial").details["fullModelId"] == full_id
    )
    (evaluation,) = project.get_model_evaluation_store("holdout").list_model_evaluations()
    info = evaluation.get_full_info()
    assert (info.model_full_id, info.metrics["auc"]) == (full_id, 0.77)
