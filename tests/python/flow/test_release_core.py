"""The release core against an in-memory deployment target (no server): a second target plugs in unchanged.

Also the earlier-environments policy, every combination of its inputs.
"""

from __future__ import annotations

import itertools
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from test_deploy_decisions import env_config, make_archive, sha

from mlcd.audit import AuditTrail, read_audit
from mlcd.dss.errors import DSSError
from mlcd.errors import RollbackFailed, RolledBack
from mlcd.release.archive import read_bundle
from mlcd.release.deploy import deploy_bundle
from mlcd.release.ledger import Ledger
from mlcd.release.policy import Unwind, decide
from mlcd.release.session import Release
from mlcd.release.target import DeploymentTarget
from mlcd.runrecord import RunRecord


class MemoryTarget:
    """A deployment target kept in memory; ``refuse`` names bundles whose activation fails."""

    def __init__(self, active: str | None, refuse: tuple[str, ...] = ()) -> None:
        self.name, self.project = "prod", "P"
        self.active = active
        self.imported: dict[str, dict[str, Any]] = {active: {"bundleId": active}} if active else {}
        self.refuse = set(refuse)
        self.calls: list[str] = []

    def project_exists(self) -> bool:
        return self.active is not None

    def active_bundle(self) -> str | None:
        return self.active

    def imported_bundles(self) -> dict[str, dict[str, Any]]:
        return dict(self.imported)

    def connections(self) -> tuple[set[str] | None, str | None]:
        return {"warehouse_prod"}, None

    def remappings(self) -> dict[str, str]:
        return {}

    def set_remappings(self, remappings: dict[str, str]) -> bool:
        return True

    def create_from_bundle(self, archive: Path) -> None:
        raise AssertionError("not a first deploy")

    def import_bundle(self, archive: Path, bundle_id: str) -> None:
        self.calls.append(f"import {bundle_id}")
        self.imported[bundle_id] = {"bundleId": bundle_id}

    def preload(self, bundle_id: str) -> None:
        self.calls.append(f"preload {bundle_id}")

    def activate(self, bundle_id: str) -> dict[str, Any]:
        self.calls.append(f"activate {bundle_id}")
        if bundle_id in self.refuse:
            self.active = bundle_id  # the node switched, then reported an error (unknown result)
            raise DSSError(500, code="ERR_X", message="activation broke", node="prod", operation="activate")
        self.active = bundle_id
        return {"messages": []}

    def scenario_ids(self) -> list[str]:
        return []

    def run_scenarios(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no smoke after an activation rollback")


def session(tmp_path: Path, target: MemoryTarget) -> tuple[Release, RunRecord, Path]:
    archive = make_archive(tmp_path / "b.zip", bundle_id="P_b2", connections=("warehouse",))
    record = RunRecord.create(tmp_path / "out", bundleId="P_b2", sha256=sha(archive), archive=str(archive))
    audit = AuditTrail(tmp_path / "out" / "audit.jsonl", actor="t", build_url=None)
    typed: DeploymentTarget = target
    rel = Release(
        env_config(), typed, Ledger(audit, record, "prod"), tmp_path / "out", lambda m: None, nullcontext
    )
    return rel, record, archive


def final_records(tmp_path: Path) -> list[tuple[str, Any]]:
    return [
        (r["outcome"], r["detail"]["activeBundleId"])
        for r in read_audit(tmp_path / "out" / "audit.jsonl")
        if r["operation"] == "deployment"
    ]


def state(tmp_path: Path) -> tuple[str, str | None]:
    entry = json.loads((tmp_path / "out" / "run.json").read_text())["environments"]["prod"]
    return entry["state"], entry.get("activeBundleId")


def test_a_deploy_through_another_target(tmp_path: Path) -> None:
    target = MemoryTarget("P_b1")
    rel, record, archive = session(tmp_path, target)
    done = deploy_bundle(rel, read_bundle(archive), archive, record.sha256, final_record=True)
    assert (done.outcome, done.previous) == ("SUCCESS", "P_b1")
    assert target.calls == ["import P_b2", "preload P_b2", "activate P_b2"]
    assert final_records(tmp_path) == [("SUCCEEDED", "P_b2")] and state(tmp_path) == ("DEPLOYED", "P_b2")


def test_a_failed_activation_is_rolled_back_and_both_records_agree(tmp_path: Path) -> None:
    target = MemoryTarget("P_b1", refuse=("P_b2",))
    rel, record, archive = session(tmp_path, target)
    with pytest.raises(RolledBack) as caught:
        deploy_bundle(rel, read_bundle(archive), archive, record.sha256, final_record=True)
    assert caught.value.recorded and caught.value.details["rolledBackTo"] == "P_b1"
    assert target.active == "P_b1" and target.calls[-1] == "activate P_b1"
    assert final_records(tmp_path) == [("FAILED_ROLLED_BACK", "P_b1")] and state(tmp_path) == (
        "ROLLED_BACK",
        "P_b1",
    )


def test_a_failed_rollback_needs_attention_in_both_records(tmp_path: Path) -> None:
    target = MemoryTarget("P_b1", refuse=("P_b2", "P_b1"))
    rel, record, archive = session(tmp_path, target)
    with pytest.raises(RollbackFailed) as caught:
        deploy_bundle(rel, read_bundle(archive), archive, record.sha256, final_record=True)
    assert caught.value.exit_code == 5
    assert final_records(tmp_path) == [("FAILED_NEEDS_ATTENTION", "P_b1")]
    assert state(tmp_path) == ("NEEDS_ATTENTION", "P_b1")


@pytest.mark.parametrize(
    ("policy", "opt_in", "state_", "previous"),
    list(
        itertools.product(
            ("rollback", "keep"),
            (True, False),
            ("DEPLOYED", "DEPLOYING", "ROLLED_BACK", "NEEDS_ATTENTION", "UNCHANGED", None),
            ("P_b1", "P_b2", None),
        )
    ),
)
def test_the_earlier_environments_policy(
    policy: str, opt_in: bool, state_: str | None, previous: str | None
) -> None:
    entry = {"bundleId": "P_b2", "state": state_, "previousBundleId": previous}
    got = decide(policy, opt_in, entry, "P_b2")
    changed = state_ in ("DEPLOYED", "DEPLOYING") and previous != "P_b2"
    if not changed:
        assert got is Unwind.NOOP
    elif policy == "keep" or not opt_in:
        assert got is Unwind.KEEP
    else:
        assert got is Unwind.ROLL_BACK
    # another run's bundle is never this run's change
    assert decide(policy, opt_in, {**entry, "bundleId": "P_b9"}, "P_b2") is Unwind.NOOP
