"""What a bundle's gate history means for later commands (issue 19, item 8), through the real CLI.

`mlcd rollback --to` a bundle that failed a gate needs ``--force``; `mlcd test`
after a deploy of this run that failed before activation refuses with a line
that says so (docs/commands.md, `mlcd test`).
"""

from __future__ import annotations

import subprocess

from support.flowtools import active_on, deployments, make_bundle, stage
from support.pipeline_env import PipelineEnv


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def one_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"mlcd {command}: error: ") and lines[0].count("(fix: ") == 1, lines[0]
    return lines[0]


def test_rollback_to_a_bundle_that_failed_its_gate_needs_force(pipe: PipelineEnv) -> None:
    good = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    ok(pipe.mlcd("test", "--env", "test"))
    pipe.set_design_variables(fail_test=True)
    bad = str(make_bundle(pipe, 2)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    assert pipe.mlcd("test", "--env", "test").returncode == 3  # the gate fails, test goes back to good
    assert active_on(pipe, "test") == good
    before = deployments(pipe, "test")
    refused = pipe.mlcd("rollback", "--env", "test", "--to", bad)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = one_line(refused, "rollback")
    assert f"bundle {bad} failed its tests gate on test" in line and "--force" in line
    assert active_on(pipe, "test") == good and deployments(pipe, "test") == before  # nothing done
    forced = ok(pipe.mlcd("rollback", "--env", "test", "--to", bad, "--force", "--reason", "known issue"))
    assert active_on(pipe, "test") == bad
    assert f"bundle {bad} failed its tests gate on test" in forced.stdout  # said, not hidden
    assert stage(pipe, "rollback-test")["details"]["forced"] is True
    ok(pipe.mlcd("rollback", "--env", "test", "--to", good))  # a bundle whose gates passed needs nothing


def test_test_after_a_deploy_that_failed_before_activation_says_why_it_refuses(pipe: PipelineEnv) -> None:
    good = str(make_bundle(pipe, 1)["bundleId"])
    ok(pipe.mlcd("deploy", "--env", "test"))
    new = str(make_bundle(pipe, 2)["bundleId"])
    pipe.automation["test"].set_faults(
        {"seed": 1, "rules": [{"method": "POST", "path": "actions/preload", "status": 400}]}
    )
    assert pipe.mlcd("deploy", "--env", "test").returncode == 8
    pipe.automation["test"].clear_faults()
    proc = pipe.mlcd("test", "--env", "test")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line(proc, "test")
    assert f"this run's deploy of {new} to test did not activate it (state UNCHANGED)" in line
    assert f"{good} is active on test, not this run's {new}: deploy first" in line
