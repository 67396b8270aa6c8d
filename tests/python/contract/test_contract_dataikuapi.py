"""Contract tests: the official client (dataikuapi 15.2.0) drives the stand-in through every operation."""

from __future__ import annotations

from pathlib import Path

import pytest

dataikuapi = pytest.importorskip("dataikuapi")
from dataikuapi.utils import DataikuException  # noqa: E402

from mlcd.sim.launcher import SimNode  # noqa: E402

KEY = "SIMPRJ"


@pytest.fixture
def clients(sim_design: SimNode, sim_automation: SimNode) -> tuple[object, object]:
    return (
        dataikuapi.DSSClient(sim_design.url, sim_design.api_key),
        dataikuapi.DSSClient(sim_automation.url, sim_automation.api_key),
    )


def test_instance_and_auth_info(clients: tuple[object, object]) -> None:
    design, auto = clients
    assert design.get_instance_info().node_type == "DESIGN"  # type: ignore[attr-defined]
    assert auto.get_instance_info().node_type == "AUTOMATION"  # type: ignore[attr-defined]
    assert "groups" in design.get_auth_info()  # type: ignore[attr-defined]
    assert design.list_project_keys() == [KEY]  # type: ignore[attr-defined]


def test_bundle_lifecycle_design_to_automation(clients: tuple[object, object], tmp_path: Path) -> None:
    design, auto = clients
    project = design.get_project(KEY)  # type: ignore[attr-defined]
    assert project.get_summary()["projectKey"] == KEY
    project.export_bundle("v1", release_notes="first release")
    project.export_bundle("v2")
    assert [b["bundleId"] for b in project.list_exported_bundles()["bundles"]] == ["v1", "v2"]
    with pytest.raises(DataikuException, match=r"AlreadyExists.*already exists"):
        project.export_bundle("v1")
    v1, v2 = tmp_path / "v1.zip", tmp_path / "v2.zip"
    project.download_exported_bundle_archive_to_file("v1", str(v1))
    project.download_exported_bundle_archive_to_file("v2", str(v2))
    with v1.open("rb") as fh:
        created = auto.create_project_from_bundle_archive(fh)  # type: ignore[attr-defined]
    assert created["projectKey"] == KEY
    target = auto.get_project(KEY)  # type: ignore[attr-defined]
    with v2.open("rb") as fh:
        target.import_bundle_from_stream(fh)
    assert [b["bundleId"] for b in target.list_imported_bundles()["bundles"]] == ["v1", "v2"]
    target.preload_bundle("v1")
    target.activate_bundle("v1")
    active = {p["projectKey"]: p.get("activeBundleState", {}).get("bundleId") for p in auto.list_projects()}  # type: ignore[attr-defined]
    assert active == {KEY: "v1"}
    target.activate_bundle("v2", scenarios_to_enable={"TEST_OK": True})
    assert auto.list_projects()[0]["activeBundleState"]["bundleId"] == "v2"  # type: ignore[attr-defined]
    variables = target.get_variables()
    variables["local"]["env"] = "test"
    target.set_variables(variables)
    assert target.get_variables()["local"] == {"env": "test"}
    target.delete_imported_bundle("v1")
    project.delete_exported_bundle("v1")
    assert [b["bundleId"] for b in project.list_exported_bundles()["bundles"]] == ["v2"]


def test_scenarios_run_and_wait(clients: tuple[object, object]) -> None:
    design, _ = clients
    project = design.get_project(KEY)  # type: ignore[attr-defined]
    ids = {s["id"] for s in project.list_scenarios()}
    assert {"TEST_OK", "TEST_FAIL", "SLOW"} <= ids
    scenario = project.get_scenario("TEST_OK")
    run = scenario.run_and_wait()
    assert run.outcome == "SUCCESS"
    details = run.get_details()
    assert details.steps[0]["result"]["outcome"] == "SUCCESS"
    assert "project SIMPRJ" in run.get_log()
    assert b"<testcase" in run.get_report().content
    assert scenario.get_last_runs(limit=5)[0].id == run.id
    assert scenario.get_run(run.id).outcome == "SUCCESS"
    assert scenario.get_status().running is False

    failing = project.get_scenario("TEST_FAIL")
    with pytest.raises(DataikuException, match="FAILED"):
        failing.run_and_wait()
    last = failing.get_last_finished_run()
    assert last.outcome == "FAILED"
    error = last.get_details().first_error_details
    assert error["message"] == "ValueError: model AUC 0.51 below 0.7"


def test_abort_and_cancelled_trigger(clients: tuple[object, object]) -> None:
    design, _ = clients
    scenario = design.get_project(KEY).get_scenario("SLOW")  # type: ignore[attr-defined]
    fire = scenario.run()
    run = fire.wait_for_scenario_run()
    assert run.running
    again = scenario.run()
    assert again.is_cancelled(refresh=True)
    scenario.abort()
    run.wait_for_completion(no_fail=True)
    assert run.outcome == "ABORTED"


def test_errors_surface_as_dataiku_exceptions(clients: tuple[object, object], sim_design: SimNode) -> None:
    design, auto = clients
    with pytest.raises(DataikuException, match="UnauthorizedException: Failed to read project permissions"):
        design.get_project("NOPE").get_summary()  # type: ignore[attr-defined]
    assert "NOPE" not in design.list_project_keys()  # type: ignore[attr-defined]
    with pytest.raises(DataikuException, match="NotAuthenticatedException: Unknown API Key"):
        dataikuapi.DSSClient(sim_design.url, "not-the-key").list_projects()
    with pytest.raises(DataikuException, match="design node"):
        auto.get_project(KEY).export_bundle("v1")  # type: ignore[attr-defined]


def test_project_delete_future(clients: tuple[object, object]) -> None:
    design, _ = clients
    future = design.get_project(KEY).delete(wait=False)  # type: ignore[attr-defined]
    assert future.wait_for_result()["success"] is True
    assert design.list_project_keys() == []  # type: ignore[attr-defined]
    future.abort()


def test_settings_round_trip_and_remapping_where_dss_holds_it(
    clients: tuple[object, object], sim_automation: SimNode, tmp_path: Path
) -> None:
    design, auto = clients
    project = design.get_project(KEY)  # type: ignore[attr-defined]
    project.export_bundle("v1")
    archive = tmp_path / "v1.zip"
    project.download_exported_bundle_archive_to_file("v1", str(archive))
    node_json = sim_automation.data_dir / "node.json"
    node_json.write_text(
        '{"nodeName": "auto-test", "connections": {"warehouse_test": {"type": "PostgreSQL"}}}'
    )
    assert list(auto.list_connections()) == ["warehouse_test"]  # type: ignore[attr-defined]
    with archive.open("rb") as fh:
        auto.create_project_from_bundle_archive(fh)  # type: ignore[attr-defined]
    target = auto.get_project(KEY)  # type: ignore[attr-defined]
    with pytest.raises(DataikuException, match="warehouse"):
        target.activate_bundle("v1")
    assert "activeBundleState" not in auto.list_projects()[0]  # type: ignore[attr-defined]

    settings = target.get_settings()
    settings.set_python_code_env("py311")
    settings.get_raw()["bundleContainerSettings"]["remapping"]["connections"] = [
        {"source": "warehouse", "target": "warehouse_test"}
    ]
    settings.save()
    again = target.get_settings().get_raw()
    assert again["settings"]["codeEnvs"]["python"]["envName"] == "py311"
    assert again["bundleContainerSettings"]["remapping"]["connections"][0]["target"] == "warehouse_test"
    report = target.activate_bundle("v1")
    assert "remapped to 'warehouse_test'" in report["messages"][0]["message"]
    assert auto.list_projects()[0]["activeBundleState"]["bundleId"] == "v1"  # type: ignore[attr-defined]
