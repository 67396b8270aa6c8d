"""The real CLI through deploy, test, smoke and rollback against every stand-in dialect (issue 11).

Each dialect is the other reading of one DSS behaviour public evidence does not
confirm (docs/stand-in.md); mlcd must work under each, or fail with one clear line.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from mlcd.sim.dialects import ENV_SETTINGS_DIALECTS, NAMED, REMAPPING_KEY
from support.flowtools import active_on, deployments, make_bundle, stage
from support.pipeline_env import PipelineEnv

WORKING = [name for name in NAMED if name not in ("remapping-key-ignored", "archive-layout-opaque")]
# the per-environment settings' switches act only when mlcd.yaml sets them: test_flow_envsettings.py
WORKING = [name for name in WORKING if name not in ENV_SETTINGS_DIALECTS]


def use_dialect(pipe: PipelineEnv, name: str) -> None:
    """Switch every node of ``pipe`` to dialect ``name`` (node.json is read on every request)."""
    for node in pipe.nodes():
        path = node.data_dir / "node.json"
        data = json.loads(path.read_text())
        data["dialect"] = NAMED[name]
        path.write_text(json.dumps(data))


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def one_error_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlcd {command}: error: "), proc.stderr
    return lines[0]


def release_and_roll_back(pipe: PipelineEnv) -> None:
    first = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert active_on(pipe, "test") == first
    ok(pipe.mlcd("test", "--env", "test"))
    ok(pipe.mlcd("smoke", "--env", "test"))
    second = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert active_on(pipe, "test") == second
    status = ok(pipe.mlcd("status", "--env", "test"))
    assert first in status.stdout and second in status.stdout
    ok(pipe.mlcd("rollback", "--env", "test"))
    assert active_on(pipe, "test") == first
    assert stage(pipe, "rollback-test")["exitCode"] == 0


@pytest.mark.parametrize("dialect", WORKING)
def test_release_works_in_every_dialect(pipe: PipelineEnv, dialect: str) -> None:
    use_dialect(pipe, dialect)
    release_and_roll_back(pipe)


def test_release_works_with_an_archive_layout_unknown_to_mlcd(pipe: PipelineEnv) -> None:
    use_dialect(pipe, "archive-layout-opaque")
    release_and_roll_back(pipe)


def test_dss_ignoring_the_remapping_key_fails_clearly_and_activates_nothing(pipe: PipelineEnv) -> None:
    use_dialect(pipe, "remapping-key-ignored")
    make_bundle(pipe, 1)
    # the first deploy creates the project, then finds its remappings ignored; a second one finds the same:
    # one class of failure (a step before activation), one exit code and one record (docs/decisions.md)
    for attempt in ("first", "again"):
        proc = pipe.mlcd("deploy", "--env", "test")
        assert proc.returncode == 8, attempt + proc.stdout + proc.stderr
        line = one_error_line(proc, "deploy")
        assert REMAPPING_KEY in line and "unchanged" in line, line
        assert line.count("(fix: ") == 1
        assert active_on(pipe, "test") is None
        assert stage(pipe, "deploy-test")["exitCode"] == 8
        assert stage(pipe, "deploy-test")["outcome"] == "FAILED"
        assert pipe.run_record()["environments"]["test"]["state"] == "UNCHANGED"
    assert deployments(pipe, "test") == ["FAILED_UNCHANGED", "FAILED_UNCHANGED"]


def test_activation_refused_by_a_report_leaves_the_environment_unchanged(pipe: PipelineEnv) -> None:
    """A non-admin key (no connection pre-check) and a refusal that comes as a 200 report."""
    for node in pipe.nodes():
        path = node.data_dir / "node.json"
        data = json.loads(path.read_text())
        data["dialect"] = {**NAMED["activation-refusal-report"], **NAMED["connections-non-admin-401"]}
        path.write_text(json.dumps(data))
    first = str(make_bundle(pipe, 1)["bundleId"])
    proc = ok(pipe.mlcd("deploy", "--env", "test"))
    assert "key is not admin" in proc.stdout  # the pre-check is skipped visibly
    pipe.env_config("test")["connection_remappings"] = {"warehouse": "warehouse_nope"}
    pipe.write_config()
    make_bundle(pipe, 2)
    refused = pipe.mlcd("deploy", "--env", "test")
    assert refused.returncode == 8, refused.stdout + refused.stderr
    line = one_error_line(refused, "deploy")
    assert "warehouse_nope" in line and "unchanged" in line
    assert active_on(pipe, "test") == first
