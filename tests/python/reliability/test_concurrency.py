"""Concurrency: two deploys of the same project to the same environment at once, and another actor
activating a bundle behind mlcd's back between its plan and its activation.

Each deploy runs from its own out dir (two CI workspaces on one agent) and shares
the agent's lock directory. The stand-in delays preload so that the first deploy
is still in the middle of its work when the second starts. The nodes' request
counters and the audit trails show whether activations interleaved.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlcd.dss.node import DSSNode
from support import canary
from support.pipeline_env import PipelineEnv, key_env_name
from support.reltools import reader, record_result

ACTIVATE = "POST /projects/<key>/bundles/imported/<bundle_id>/actions/activate"
PRELOAD = "POST /projects/<key>/bundles/imported/<bundle_id>/actions/preload"


def build(pipe: PipelineEnv, out: Path, build_number: int) -> str:
    """`mlcd bundle` into out dir ``out``; return the bundle id."""
    pipe.set_design_variables(model_version=str(build_number))
    proc = pipe.mlcd("bundle", "--build-number", str(build_number), extra_env={"MLCD_OUT_DIR": str(out)})
    assert proc.returncode == 0, proc.stderr
    return str(_with_out(pipe, out).run_record()["bundleId"])


def _with_out(pipe: PipelineEnv, out: Path) -> PipelineEnv:
    clone: PipelineEnv = PipelineEnv(**{**pipe.__dict__, "out_dir": out})
    return clone


def deploy(pipe: PipelineEnv, out: Path, *extra: str) -> subprocess.Popen[str]:
    """Start `mlcd deploy --env test` from out dir ``out``."""
    env = dict(pipe.env, MLCD_OUT_DIR=str(out))
    return subprocess.Popen(
        [sys.executable, "-m", "mlcd", "deploy", "--env", "test", *extra], cwd=pipe.root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_route(pipe: PipelineEnv, route: str, proc: subprocess.Popen[str]) -> None:
    """Wait until the test node has seen ``route`` (the deploy is there now)."""
    node = pipe.automation["test"]
    give_up = time.monotonic() + 60
    while node.stats()["routes"].get(route, 0) == 0:
        assert proc.poll() is None, "the deploy ended before reaching " + route
        assert time.monotonic() < give_up
        time.sleep(0.02)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for a deploy; return (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    canary.capture("mlcd deploy (concurrent)", out, err)
    return proc.returncode, out, err


def audit_of(pipe: PipelineEnv, out: Path) -> list[dict[str, Any]]:
    """The audit records of out dir ``out``."""
    records: list[dict[str, Any]] = _with_out(pipe, out).audit_records()
    return records


def first_time(records: list[dict[str, Any]], operation: str) -> str:
    """``time`` of the first record of ``operation``."""
    return str(next(r["time"] for r in records if r["operation"] == operation))


def last_time(records: list[dict[str, Any]]) -> str:
    """``time`` of the last record (what a command audits last, e.g. `deploy` DEPLOYED)."""
    return max(str(r["time"]) for r in records)


def released(pipe: PipelineEnv, tmp: Path) -> str:
    """A first bundle deployed to test (from out dir ``tmp/base``)."""
    base = tmp / "base"
    first = build(pipe, base, 1)
    proc = pipe.mlcd("deploy", "--env", "test", extra_env={"MLCD_OUT_DIR": str(base)})
    assert proc.returncode == 0, proc.stderr
    return first


@pytest.mark.xdist_group("serial")  # timing: the second deploy must start while the first holds the lock
def test_second_deploy_waits_for_the_first_and_activations_never_interleave(
    rpipe: PipelineEnv, tmp_path: Path
) -> None:
    """Two deploys of two bundles at once: the second waits (holder shown), then deploys on top."""
    pipe = rpipe
    released(pipe, tmp_path)
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    bundle_a, bundle_b = build(pipe, out_a, 2), build(pipe, out_b, 3)
    node = pipe.automation["test"]
    node.reset_stats()
    node.set_faults({"seed": 1, "rules": [{"path": "actions/preload$", "latency": 2.0, "times": 1}]})
    first = deploy(pipe, out_a)
    try:
        wait_for_route(pipe, PRELOAD, first)
        second = deploy(pipe, out_b, "--lock-timeout", "60")
        code_b, stdout_b, err_b = finish(second)
    finally:
        code_a, _, err_a = finish(first)
        node.clear_faults()
    assert code_a == 0, err_a
    assert code_b == 0, err_b
    assert "waiting up to" in stdout_b and f"pid {first.pid}" in stdout_b  # the holder is visible
    a, b = audit_of(pipe, out_a), audit_of(pipe, out_b)
    # the second read the node's state only after the first had finished: no interleaving
    assert [r["outcome"] for r in a if r["operation"] in ("deploy", "deployment")][-1:] in (
        ["DEPLOYED"],
        ["SUCCEEDED"],
    )
    assert first_time(b, "read_state") >= last_time(a)
    assert node.stats()["routes"][ACTIVATE] == 2
    assert [r["detail"]["previousBundleId"] for r in b if r["operation"] == "record_previous"] == [bundle_a]
    r = reader(pipe, "test")
    try:
        assert r.active(pipe.project_key) == bundle_b
    finally:
        r.close()
    record_result("concurrency", case="second-waits", passed=True)


@pytest.mark.reliability
def test_second_deploy_gives_up_on_the_lock_and_changes_nothing(rpipe: PipelineEnv, tmp_path: Path) -> None:
    """With a short lock timeout the second deploy stops with exit 9 before touching the node."""
    pipe = rpipe
    first_bundle = released(pipe, tmp_path)
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    bundle_a, _ = build(pipe, out_a, 2), build(pipe, out_b, 3)
    node = pipe.automation["test"]
    node.reset_stats()
    node.set_faults({"seed": 1, "rules": [{"path": "actions/preload$", "latency": 3.0, "times": 1}]})
    first = deploy(pipe, out_a)
    try:
        wait_for_route(pipe, PRELOAD, first)
        code_b, _, err_b = finish(deploy(pipe, out_b, "--lock-timeout", "0.5"))
        r = reader(pipe, "test")
        try:
            assert r.active(pipe.project_key) == first_bundle  # the first is still preloading
        finally:
            r.close()
    finally:
        code_a, _, err_a = finish(first)
        node.clear_faults()
    assert code_b == 9, err_b
    assert f"pid {first.pid}" in err_b and "nothing was changed" in err_b
    ops_b = {str(r["operation"]) for r in audit_of(pipe, out_b)}
    assert not ops_b & {"read_state", "import", "preload", "activate"}
    assert code_a == 0, err_a
    assert node.stats()["routes"][ACTIVATE] == 1
    r = reader(pipe, "test")
    try:
        assert r.active(pipe.project_key) == bundle_a
    finally:
        r.close()
    record_result("concurrency", case="lock-timeout", passed=True)


@pytest.mark.parametrize("racer_choice", [pytest.param("older", marks=pytest.mark.reliability), "newer"])
def test_activation_by_another_actor_between_plan_and_activation_is_detected(
    rpipe: PipelineEnv, tmp_path: Path, racer_choice: str
) -> None:
    """Another actor activates a different bundle while mlcd preloads: mlcd stops before activating."""
    pipe = rpipe
    first = released(pipe, tmp_path)
    second_out = tmp_path / "second"
    second = build(pipe, second_out, 2)
    assert pipe.mlcd("deploy", "--env", "test", extra_env={"MLCD_OUT_DIR": str(second_out)}).returncode == 0
    out = tmp_path / "ours"
    ours = build(pipe, out, 3)
    if racer_choice == "newer":  # the racer's bundle is one mlcd never saw: imported by the racer itself
        racer_out = tmp_path / "racer"
        racer_bundle = build(pipe, racer_out, 4)
        racer_archive = racer_out / "bundles" / f"{racer_bundle}.zip"
    else:
        racer_bundle, racer_archive = first, None
    node = pipe.automation["test"]
    racer = DSSNode(node.url, pipe.keys[key_env_name("test")], name="racer")
    if racer_archive is not None:
        racer.import_bundle(pipe.project_key, racer_archive, bundle_id=racer_bundle)
    node.reset_stats()
    node.set_faults({"seed": 1, "rules": [{"path": "actions/preload$", "latency": 2.0, "times": 1}]})
    proc = deploy(pipe, out)
    try:
        wait_for_route(pipe, PRELOAD, proc)
        remap = {"warehouse": "warehouse_test"}
        racer.activate_bundle(pipe.project_key, racer_bundle, connection_remappings=remap)
        code, _, err = finish(proc)
    finally:
        racer.close()
        node.clear_faults()
    assert code == 8, err
    assert "raced" in err and "nothing was activated" in err
    assert node.stats()["routes"][ACTIVATE] == 1  # only the racer's
    r = reader(pipe, "test")
    try:
        assert r.active(pipe.project_key) == racer_bundle
    finally:
        r.close()
    records = audit_of(pipe, out)
    assert [r["outcome"] for r in records if r["operation"] == "deployment"] == ["FAILED_UNCHANGED"]
    assert ours not in [r["bundleId"] for r in records if r["operation"] == "activate"]
    recorded = [r["detail"]["previousBundleId"] for r in records if r["operation"] == "record_previous"]
    assert recorded == [second]
    record_result("concurrency", case=f"racer-{racer_choice}", passed=True)
