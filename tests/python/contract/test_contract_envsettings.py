"""Contract: dataikuapi drives the stand-in's per-node project settings (issue 21).

``get_variables``/``set_variables`` (the local part survives activation, the standard part
comes from the bundle) and ``activate_bundle(scenarios_to_enable=...)`` (named scenarios
switched, the others keep their state), plus the code-env remapping list in the project's
settings (inferred key, docs/stand-in.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

dataikuapi = pytest.importorskip("dataikuapi")

from mlcd.sim.launcher import SimNode  # noqa: E402

KEY = "SIMPRJ"


def active_states(project: Any) -> dict[str, bool]:
    return {s["id"]: bool(s["active"]) for s in project.list_scenarios()}


def test_local_variables_and_scenario_states_across_activations(
    sim_design: SimNode, sim_automation: SimNode, tmp_path: Path
) -> None:
    design = dataikuapi.DSSClient(sim_design.url, sim_design.api_key).get_project(KEY)
    auto = dataikuapi.DSSClient(sim_automation.url, sim_automation.api_key)
    for bid in ("v1", "v2"):
        design.export_bundle(bid)
        design.download_exported_bundle_archive_to_file(bid, str(tmp_path / f"{bid}.zip"))
    with (tmp_path / "v1.zip").open("rb") as fh:
        auto.create_project_from_bundle_archive(fh)
    project = auto.get_project(KEY)
    with (tmp_path / "v2.zip").open("rb") as fh:
        project.import_bundle_from_stream(fh)

    project.activate_bundle("v1", scenarios_to_enable={"TEST_OK": True})
    assert active_states(project)["TEST_OK"] is True
    variables = project.get_variables()
    assert variables["standard"] == {"threshold": 0.7} and variables["local"] == {}
    project.update_variables({"env": "prod", "endpoint": "https://scoring.example.com"}, type="local")

    project.activate_bundle("v2", scenarios_to_enable={"TEST_OK": False})
    after = project.get_variables()
    assert after["local"] == {"env": "prod", "endpoint": "https://scoring.example.com"}  # kept
    assert after["standard"] == {"threshold": 0.7}  # from the bundle
    assert active_states(project)["TEST_OK"] is False

    project.activate_bundle("v1")  # no option: every scenario keeps its state
    assert active_states(project)["TEST_OK"] is False
    with pytest.raises(ValueError, match="local"):
        project.set_variables({"standard": {}})


def test_code_env_remappings_round_trip_in_the_project_settings(
    sim_design: SimNode, sim_automation: SimNode, tmp_path: Path
) -> None:
    design = dataikuapi.DSSClient(sim_design.url, sim_design.api_key).get_project(KEY)
    auto = dataikuapi.DSSClient(sim_automation.url, sim_automation.api_key)
    design.export_bundle("v1")
    design.download_exported_bundle_archive_to_file("v1", str(tmp_path / "v1.zip"))
    with (tmp_path / "v1.zip").open("rb") as fh:
        auto.create_project_from_bundle_archive(fh)
    project = auto.get_project(KEY)
    settings = project.get_settings()
    settings.get_raw()["bundleContainerSettings"]["remapping"]["codeEnvs"] = [
        {"source": "py39_ml", "target": "py39_ml_prod"}
    ]
    settings.save()
    raw = project.get_settings().get_raw()
    assert raw["bundleContainerSettings"]["remapping"]["codeEnvs"] == [
        {"source": "py39_ml", "target": "py39_ml_prod"}
    ]
