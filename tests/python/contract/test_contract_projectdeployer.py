"""Contract tests: dataikuapi's ``DSSProjectDeployer`` drives the stand-in deployer (which updates an
automation stand-in over HTTP).

The design and automation nodes come from the pipeline support (sample project
SAMPLE, connection ``warehouse`` remapped to ``warehouse_test`` on the node).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

dataikuapi = pytest.importorskip("dataikuapi")
from dataikuapi.utils import DataikuException  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.deployer_env import DeployerPipeline, start_deployer_pipeline  # noqa: E402
from support.flowtools import active_on  # noqa: E402


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[DeployerPipeline]:
    with start_deployer_pipeline(tmp_path / "pipe", envs=("test",)) as p:
        yield p


def _export(dp: DeployerPipeline, bundle_id: str, dest: Path) -> Path:
    design = dataikuapi.DSSClient(dp.pipe.design.url, dp.pipe.keys["DSS_DESIGN_API_KEY"])
    project = design.get_project(dp.pipe.project_key)
    project.export_bundle(bundle_id)
    project.download_exported_bundle_archive_to_file(bundle_id, str(dest))
    return dest


def test_deployer_round_trip_with_dataikuapi(dp: DeployerPipeline, tmp_path: Path) -> None:
    client = dataikuapi.DSSClient(dp.deployer.url, dp.deployer.api_key)
    deployer = client.get_projectdeployer()
    infras = deployer.list_infras(as_objects=False)
    assert [(i["infraBasicInfo"]["id"], i["canDeploy"]) for i in infras] == [("test-infra", True)]
    assert [s["id"] for s in deployer.list_stages()] == ["test"]
    key = dp.pipe.project_key
    for bid in ("v1", "v2"):
        with _export(dp, bid, tmp_path / f"{bid}.zip").open("rb") as fh:
            deployer.upload_bundle(fh, key)
    status = deployer.get_project(key).get_status()
    assert [p["id"] for p in status.get_raw()["packages"]] == ["v1", "v2"]
    deployment = deployer.create_deployment(f"{key}-on-test-infra", key, "test-infra", "v1")
    settings = deployment.get_settings()
    assert settings.bundle_id == "v1" and settings.published_project_key == key
    settings.get_raw()["bundleContainerSettings"]["remapping"]["connections"] = [
        {"source": "warehouse", "target": "warehouse_test"}
    ]
    settings.save()
    result = deployment.start_update().wait_for_result()
    assert result["success"] is True
    assert active_on(dp.pipe, "test") == "v1"
    status = deployment.get_status()
    assert status.get_health() == "HEALTHY"
    [message] = status.get_health_messages()["messages"]
    assert message["severity"] == "SUCCESS" and set(message) >= {"code", "title", "message", "isFatal"}
    assert status.get_light()["deploymentBasicInfo"]["bundleId"] == "v1"
    settings = deployment.get_settings()
    settings.bundle_id = "v2"
    settings.save()
    assert deployment.get_status().get_health() == "OUT_OF_SYNC"  # settings diverge from the node
    deployment.start_update().wait_for_result()
    assert active_on(dp.pipe, "test") == "v2"
    updates = deployment.list_updates()
    assert [u.status for u in updates] == ["SUCCESS", "SUCCESS"]
    last = deployment.get_update()
    assert last.status == "SUCCESS" and any("activating bundle v2" in line for line in last.logs)
    assert updates[0].get_full_update().start_time == last.start_time
    assert [d.id for d in deployer.list_deployments()] == [f"{key}-on-test-infra"]


@pytest.mark.slow
def test_deployer_errors_with_dataikuapi(dp: DeployerPipeline, tmp_path: Path) -> None:
    deployer = dataikuapi.DSSClient(dp.deployer.url, dp.deployer.api_key).get_projectdeployer()
    key = dp.pipe.project_key
    with pytest.raises(DataikuException, match="does not exist"):
        deployer.create_deployment("d", key, "test-infra", "v1")  # nothing published
    with _export(dp, "v1", tmp_path / "v1.zip").open("rb") as fh:
        deployer.upload_bundle(fh, key)
    with pytest.raises(DataikuException, match="Infrastructure 'nope' does not exist"):
        deployer.create_deployment("d", key, "nope", "v1")
    with pytest.raises(DataikuException, match="Deployment 'missing' does not exist"):
        deployer.get_deployment("missing").get_settings()
    wrong = dataikuapi.DSSClient(dp.deployer.url, "not-the-key").get_projectdeployer()
    with pytest.raises(DataikuException, match="Unknown API Key"):
        wrong.list_infras()


def test_deployment_variables_and_governance_status_with_dataikuapi(
    dp: DeployerPipeline, tmp_path: Path
) -> None:
    deployer = dataikuapi.DSSClient(dp.deployer.url, dp.deployer.api_key).get_projectdeployer()
    key = dp.pipe.project_key
    with _export(dp, "v1", tmp_path / "v1.zip").open("rb") as fh:
        deployer.upload_bundle(fh, key)
    deployment = deployer.create_deployment(f"{key}-on-test-infra", key, "test-infra", "v1")
    settings = deployment.get_settings()
    settings.get_raw()["localVariables"] = {"env": "test", "threshold": 0.7}
    settings.get_raw()["bundleContainerSettings"]["remapping"]["connections"] = [
        {"source": "warehouse", "target": "warehouse_test"}
    ]
    settings.save()
    assert deployment.start_update().wait_for_result()["success"] is True
    automation = dataikuapi.DSSClient(dp.pipe.automation["test"].url, dp.pipe.keys["DSS_TEST_API_KEY"])
    assert automation.get_project(key).get_variables()["local"] == {"env": "test", "threshold": 0.7}
    [approved] = deployment.get_governance_status("v1")["messages"]
    assert approved["severity"] == "SUCCESS"
    dp.set_faults(governUnapproved=["v1"])
    [refused] = deployment.get_governance_status()["messages"]  # the deployment's bundle
    assert refused["severity"] == "ERROR" and refused["isFatal"] is True
