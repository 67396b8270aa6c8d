"""Unit tests of deploy decisions: archive checks, approvals, rollback target, plan (plain data, no node)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from mlcd.config import EnvironmentConfig, NodeConfig, TestsConfig, TimeoutsConfig, TLSConfig
from mlcd.errors import InputError
from mlcd.release.approval import approval_problem, require_approval
from mlcd.release.archive import check_archive, read_bundle, same_content
from mlcd.release.decisions import STATE_DEPLOYED
from mlcd.release.ledger import deployed_by_this_run
from mlcd.release.plan import make_plan
from mlcd.release.rollback import rollback_target
from mlcd.runrecord import RunRecord


def make_archive(path: Path, bundle_id: str = "P_b1", connections: tuple[str, ...] = ("warehouse",)) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "manifest.json",
            json.dumps({"bundleId": bundle_id, "projectKey": "P", "requiredConnections": list(connections)}),
        )
        for sid in ("TEST_A", "TEST_B", "TEST_SMOKE", "BUILD"):
            zf.writestr(f"project/scenarios/{sid}.json", json.dumps({"id": sid, "steps": []}))
        zf.writestr("project/data/x.csv", "a,b\n")
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def env_config(**over: object) -> EnvironmentConfig:
    base: dict[str, object] = {
        "name": "prod",
        "node": NodeConfig(url="http://127.0.0.1:1", api_key_env="K", tls=TLSConfig()),
        "connection_remappings": {"warehouse": "warehouse_prod"},
        "approval": False,
        "tests": TestsConfig(enabled=True, prefix="TEST_", scenarios=None, exclude=()),
        "smoke": ("TEST_SMOKE",),
        "warning": "fail",
        "flaky": {},
        "timeouts": TimeoutsConfig(),
        "rollback_on_failure": True,
    }
    base.update(over)
    return EnvironmentConfig(**base)  # type: ignore[arg-type]


def test_archive_with_other_bytes_is_refused(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "b.zip")
    record = RunRecord.create(tmp_path / "out", bundleId="P_b1", sha256=sha(archive), archive=str(archive))
    assert check_archive(record, archive).bundle_id == "P_b1"
    with archive.open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(InputError, match="sha256"):
        check_archive(record, archive)


def test_archive_of_another_bundle_is_refused(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "b.zip", bundle_id="P_other")
    record = RunRecord.create(tmp_path / "out", bundleId="P_b1", sha256=sha(archive), archive=str(archive))
    with pytest.raises(InputError, match="P_other"):
        check_archive(record, archive)


def test_not_a_bundle_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable bundle"):
        read_bundle(bad)


def test_approval_must_cover_this_sha256(tmp_path: Path) -> None:
    assert approval_problem({}, "prod", "abc") is not None
    assert approval_problem({"approvedBy": "ann", "approvedSha256": "other"}, "prod", "abc") is not None
    assert approval_problem({"approvedBy": "ann", "approvedSha256": "abc"}, "prod", "abc") is None
    assert approval_problem({"approval": {"approvedBy": "ann", "sha256": "abc"}}, "prod", "abc") is None
    archive = make_archive(tmp_path / "b.zip")
    record = RunRecord.create(tmp_path / "out", bundleId="P_b1", sha256=sha(archive), archive=str(archive))
    with pytest.raises(InputError, match="needs an approval"):
        require_approval(record, env_config(approval=True))
    assert require_approval(record, env_config(approval=False)) is None
    record.update_env("prod", approvedBy="ann", approvedSha256=sha(archive))
    assert require_approval(record, env_config(approval=True)) == "ann"


@pytest.mark.parametrize(
    ("entry", "explicit", "expected"),
    [
        ({"previousBundleId": "P_b0"}, None, "P_b0"),  # the bundle active before this run's deploy
        ({"previousBundleId": None}, None, None),  # first deploy: nothing to go back to
        ({}, None, None),  # this run never deployed there
        ({"previousBundleId": "P_b1"}, None, None),  # the recorded one is this very bundle
        ({"previousBundleId": "P_b0"}, "P_old", "P_old"),  # --to wins
        ({}, "P_old", "P_old"),
    ],
)
def test_rollback_target(entry: dict[str, object], explicit: str | None, expected: str | None) -> None:
    assert rollback_target(entry, "P_b1", explicit) == expected


def test_deployed_by_this_run() -> None:
    assert deployed_by_this_run({"deployedBundleId": "P_b1", "state": STATE_DEPLOYED}, "P_b1")
    assert not deployed_by_this_run({"deployedBundleId": "P_b1", "state": "ROLLED_BACK"}, "P_b1")
    assert not deployed_by_this_run({"deployedBundleId": "P_b0", "state": STATE_DEPLOYED}, "P_b1")


def test_plan_of_an_upgrade(tmp_path: Path) -> None:
    bundle = read_bundle(make_archive(tmp_path / "b.zip", connections=("warehouse", "s3")))
    plan = make_plan(
        env_config(), "P", bundle, "abc", project_exists=True, active_now="P_b0",
        imported_ids={"P_b0"}, node_connections={"warehouse_prod"}, approval_entry={},
    )
    assert (plan.active_now, plan.active_after) == ("P_b0", "P_b1")
    assert not plan.noop and not plan.already_imported
    assert plan.connections == [
        {"required": "warehouse", "afterRemapping": "warehouse_prod", "available": True},
        {"required": "s3", "afterRemapping": "s3", "available": False},
    ]
    assert plan.missing_connections == ["s3"]
    assert plan.tests == ["TEST_A", "TEST_B"] and plan.smoke == ["TEST_SMOKE"]
    assert plan.scenarios == ["BUILD", "TEST_A", "TEST_B", "TEST_SMOKE"]
    assert any(s.startswith("import bundle P_b1") for s in plan.steps)
    text = "\n".join(plan.lines())
    assert "P_b0" in text and "MISSING" in text


def test_plan_of_a_first_deploy_and_of_a_noop(tmp_path: Path) -> None:
    bundle = read_bundle(make_archive(tmp_path / "b.zip"))
    first = make_plan(
        env_config(approval=True), "P", bundle, "abc", project_exists=False, active_now=None,
        imported_ids=set(), node_connections=None, approval_entry={},
    )
    assert not first.noop and first.steps[0].startswith("create project P")
    assert first.connections[0]["available"] is None and first.approval_problem
    same = make_plan(
        env_config(), "P", bundle, "abc", project_exists=True, active_now="P_b1",
        imported_ids={"P_b1"}, node_connections=None, approval_entry={},
    )
    assert same.noop and same.already_imported
    assert same.steps == ["nothing to do: the bundle is already active"]


def test_an_imported_bundle_id_is_reused_only_for_the_same_export(tmp_path: Path) -> None:
    bundle = read_bundle(make_archive(tmp_path / "b.zip"))
    stamped = dataclasses.replace(bundle, exported_on=1700000000000)
    assert same_content(stamped, {"bundleId": "P_b1", "exportedOn": 1700000000000})
    assert not same_content(stamped, {"bundleId": "P_b1", "exportedOn": 1700000000999})
    assert same_content(stamped, {"bundleId": "P_b1"})  # the node does not say: trust the id
