"""run.json and the audit trail agree with each other and with the node, after every kind of ending.

Real CLI against stand-in nodes: the rollback that fails after a gate failure,
a redeploy after a rollback, a refused deploy, `mlcd unwind` and `mlcd run`'s
policy for earlier environments, and signals during a deploy's activation.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from support.flowtools import active_on, deployments, make_bundle, stage
from support.pipeline_env import PipelineEnv


def ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr


def release(pipe: PipelineEnv, env: str, build: int) -> str:
    bundle_id = str(make_bundle(pipe, build)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", env))
    ok(pipe.mlcd("smoke", "--env", env))
    return bundle_id


def env_record(pipe: PipelineEnv, env: str) -> dict[str, object]:
    entry = pipe.run_record()["environments"][env]
    assert isinstance(entry, dict)
    return entry


def test_a_failed_rollback_after_a_gate_failure_needs_attention_in_both_records(pipe: PipelineEnv) -> None:
    release(pipe, "test", 1)
    pipe.set_design_variables(fail_smoke=True)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    pipe.automation["test"].set_faults(
        {"seed": 1, "rules": [{"method": "POST", "path": "actions/activate", "status": 500}]}
    )
    proc = pipe.mlcd("smoke", "--env", "test")
    pipe.automation["test"].clear_faults()
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert stage(pipe, "smoke-test")["outcome"] == "ROLLBACK_FAILED"
    assert deployments(pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
    entry = env_record(pipe, "test")
    assert entry["state"] == "NEEDS_ATTENTION"  # it said DEPLOYED while the audit trail said otherwise
    assert active_on(pipe, "test") == bad == entry["activeBundleId"]


def test_after_a_rollback_and_a_redeploy_run_json_names_the_bundle_the_node_runs(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    pipe.set_design_variables(fail_smoke=True)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert pipe.mlcd("smoke", "--env", "test").returncode == 4
    assert env_record(pipe, "test")["activeBundleId"] == good == active_on(pipe, "test")
    ok(pipe.mlcd("deploy", "--env", "test"))
    entry = env_record(pipe, "test")
    assert active_on(pipe, "test") == bad
    assert (entry["state"], entry["activeBundleId"], entry["deployedBundleId"]) == ("DEPLOYED", bad, bad)


def test_a_refused_deploy_records_the_bundle_that_stays_active(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    make_bundle(pipe, 2)
    proc = pipe.mlcd("deploy", "--env", "test", "--archive", str(pipe.root / "missing.zip"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = [r for r in pipe.audit_records() if r["operation"] == "deployment"][-1]
    assert last["outcome"] == "FAILED_UNCHANGED"
    assert last["detail"]["activeBundleId"] == good == active_on(pipe, "test")


def test_unwind_rolls_back_an_earlier_environment_then_does_nothing_twice(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    new = release(pipe, "test", 2)
    assert active_on(pipe, "test") == new
    proc = pipe.mlcd("unwind", "--env", "test", "--reason", "prod failed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = stage(pipe, "unwind-test")
    assert (result["outcome"], result["details"]["rolledBackTo"]) == ("ROLLED_BACK", good)
    assert active_on(pipe, "test") == good and deployments(pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    assert env_record(pipe, "test")["state"] == "ROLLED_BACK"
    again = pipe.mlcd("unwind", "--env", "test", "--reason", "prod failed")
    assert again.returncode == 0 and stage(pipe, "unwind-test")["outcome"] == "NOOP"
    assert active_on(pipe, "test") == good


def test_unwind_keeps_by_policy_and_says_so(pipe: PipelineEnv) -> None:
    pipe.config["on_failure"] = {"earlier_environments": "keep"}
    pipe.write_config()
    release(pipe, "test", 1)
    new = release(pipe, "test", 2)
    proc = pipe.mlcd("unwind", "--env", "test", "--reason", "prod failed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stage(pipe, "unwind-test")["outcome"] == "KEPT" and active_on(pipe, "test") == new
    assert "earlier_environments is keep" in stage(pipe, "unwind-test")["message"]


def test_unwind_with_a_failing_rollback_exits_5(pipe: PipelineEnv) -> None:
    release(pipe, "test", 1)
    new = release(pipe, "test", 2)
    pipe.automation["test"].set_faults(
        {"seed": 1, "rules": [{"method": "POST", "path": "actions/activate", "status": 500}]}
    )
    proc = pipe.mlcd("unwind", "--env", "test", "--reason", "prod failed")
    pipe.automation["test"].clear_faults()
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert stage(pipe, "unwind-test")["outcome"] == "ROLLBACK_FAILED"
    assert deployments(pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
    assert env_record(pipe, "test")["state"] == "NEEDS_ATTENTION" and active_on(pipe, "test") == new


def test_run_rolls_back_earlier_environments_when_a_later_one_fails(pipe: PipelineEnv) -> None:
    previous = {env: release(pipe, env, 1) for env in ("test", "prod")}
    pipe.set_design_variables(fail_smoke=True)
    pipe.env_config("test")["smoke"] = []  # test passes without smoke; prod's smoke fails
    pipe.env_config("test")["tests"] = {"prefix": "TEST_", "exclude": ["TEST_SMOKE"]}
    pipe.write_config()
    proc = pipe.mlcd("run", "--build-number", "2")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert active_on(pipe, "test") == previous["test"] and active_on(pipe, "prod") == previous["prod"]
    details = stage(pipe, "pipeline")["details"]
    unwound = [s for s in details["stages"] if s["stage"] == "unwind"]
    assert [(s["environment"], s["outcome"]) for s in unwound] == [("test", "ROLLED_BACK")]
    assert details["environmentStates"]["test"]["state"] == "ROLLED_BACK"
    assert details["environmentStates"]["prod"]["state"] == "ROLLED_BACK"
    assert "test: ROLLED_BACK" in proc.stdout and "prod: ROLLED_BACK" in proc.stdout


def test_run_without_rollback_keeps_earlier_environments_and_says_so(pipe: PipelineEnv) -> None:
    release(pipe, "test", 1)
    prod_before = release(pipe, "prod", 1)
    pipe.set_design_variables(fail_smoke=True)
    pipe.env_config("test")["smoke"] = []
    pipe.env_config("test")["tests"] = {"prefix": "TEST_", "exclude": ["TEST_SMOKE"]}
    pipe.write_config()
    proc = pipe.mlcd("run", "--build-number", "2", "--no-rollback")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    new = pipe.run_record()["bundleId"]
    assert active_on(pipe, "test") == new and active_on(pipe, "prod") == new != prod_before
    unwound = [s for s in stage(pipe, "pipeline")["details"]["stages"] if s["stage"] == "unwind"]
    assert [(s["environment"], s["outcome"]) for s in unwound] == [("test", "KEPT")]
    assert "test: DEPLOYED" in proc.stdout and "prod: NEEDS_ATTENTION" in proc.stdout


def mlcd_watched(
    pipe: PipelineEnv, args: list[str], after_line: str, act: Callable[[subprocess.Popen[str]], None]
) -> tuple[int, str]:
    """`mlcd ARGS`, calling ``act`` once it prints ``after_line``; its exit code and output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcd", *args],
        cwd=pipe.root,
        env=pipe.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if after_line in line:
            act(proc)
            break
    rest = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    rest.start()
    err = proc.stderr.read()
    code = proc.wait(timeout=120)
    rest.join(timeout=10)
    return code, "".join(lines) + err


def deploy_and_signal(
    pipe: PipelineEnv, sig: signal.Signals, after_line: str, delay: float
) -> tuple[int, str]:
    """`mlcd deploy --env test`, sent ``sig`` ``delay`` s after it prints ``after_line``."""

    def send(proc: subprocess.Popen[str]) -> None:
        time.sleep(delay)
        proc.send_signal(sig)

    return mlcd_watched(pipe, ["deploy", "--env", "test"], after_line, send)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_after_activation_ends_rolled_back_and_recorded(
    pipe: PipelineEnv, sig: signal.Signals
) -> None:
    good = release(pipe, "test", 1)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    node = pipe.automation["test"]
    # every read of the active bundle is slow: the verification after activation leaves time for a signal
    node.set_faults({"seed": 1, "rules": [{"method": "GET", "path": r"/projects/$", "latency": 1.0}]})
    code, out = deploy_and_signal(pipe, sig, f"activating bundle {bad}", 0.6)
    node.clear_faults()
    activated = [r for r in pipe.audit_records() if r["operation"] == "activate" and r["bundleId"] == bad]
    assert activated, out
    assert code == 4, out
    assert active_on(pipe, "test") == good
    assert deployments(pipe, "test")[-1] == "FAILED_ROLLED_BACK"
    entry = env_record(pipe, "test")
    assert (entry["state"], entry["activeBundleId"]) == ("ROLLED_BACK", good)
    assert f"interrupted after activation was asked for ({sig.name})" in out


def test_a_signal_before_activation_is_recorded_as_unchanged(pipe: PipelineEnv) -> None:
    good = release(pipe, "test", 1)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    node = pipe.automation["test"]
    node.set_faults({"seed": 1, "rules": [{"method": "POST", "path": "actions/preload", "latency": 2.0}]})
    code, out = deploy_and_signal(pipe, signal.SIGTERM, f"preloading bundle {bad}", 0.5)
    node.clear_faults()
    assert code == 143, out
    assert active_on(pipe, "test") == good
    last = [r for r in pipe.audit_records() if r["operation"] == "deployment"][-1]
    assert (last["outcome"], last["detail"]["activeBundleId"]) == ("FAILED_UNCHANGED", good)
    assert (env_record(pipe, "test")["state"], env_record(pipe, "test")["activeBundleId"]) == (
        "UNCHANGED",
        good,
    )


def test_run_whose_unwind_of_an_earlier_environment_fails_exits_5_with_the_record(pipe: PipelineEnv) -> None:
    release(pipe, "test", 1)
    release(pipe, "prod", 1)
    pipe.set_design_variables(fail_smoke=True)
    pipe.env_config("test")["smoke"] = []  # test passes without smoke; prod's smoke fails
    pipe.env_config("test")["tests"] = {"prefix": "TEST_", "exclude": ["TEST_SMOKE"]}
    pipe.write_config()
    test_node = pipe.automation["test"]
    refuse = {"seed": 1, "rules": [{"method": "POST", "path": "actions/activate", "status": 500}]}
    # once prod's deploy starts, test is done: from then on its node refuses every activation
    code, out = mlcd_watched(
        pipe, ["run", "--build-number", "2"], "deploy on prod ===", lambda _: test_node.set_faults(refuse)
    )
    test_node.clear_faults()
    new = pipe.run_record()["bundleId"]
    assert code == 5, out  # it was prod's 4: the environment left needing attention did not count
    assert stage(pipe, "pipeline")["exitCode"] == 5
    unwound = [s for s in stage(pipe, "pipeline")["details"]["stages"] if s["stage"] == "unwind"]
    assert [(s["environment"], s["outcome"], s["exitCode"]) for s in unwound] == [
        ("test", "ROLLBACK_FAILED", 5)
    ]
    assert deployments(pipe, "test")[-1] == "FAILED_NEEDS_ATTENTION"
    assert (env_record(pipe, "test")["state"], active_on(pipe, "test")) == ("NEEDS_ATTENTION", new)
    assert "test: NEEDS_ATTENTION" in out and "prod: ROLLED_BACK" in out
    assert "a person must act on test" in out
