"""CLI-wide behaviour: plan files, interruption by Jenkins' abort (SIGTERM), --debug logging."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from mlcd.errors import ExitCode
from support.pipeline_env import start_pipeline_env


def test_deploy_plan_writes_the_plan_file_and_leaves_the_deploy_file_alone(tmp_path: Path) -> None:
    with start_pipeline_env(tmp_path, envs=("test",)) as pipe:
        assert pipe.mlcd("bundle").returncode == 0
        deployed = pipe.mlcd("deploy", "--env", "test")
        assert deployed.returncode == 0, deployed.stderr
        before = pipe.stage_file("deploy-test")
        planned = pipe.mlcd("deploy", "--env", "test", "--plan")
        assert planned.returncode == 0, planned.stderr
        assert pipe.stage_file("deploy-test") == before
        assert pipe.stage_file("plan-test")["stage"] == "plan"


def test_a_failed_stage_file_names_the_run_records_bundle(tmp_path: Path) -> None:
    with start_pipeline_env(tmp_path, envs=("test",)) as pipe:
        assert pipe.mlcd("bundle").returncode == 0
        bundle_id = pipe.run_record()["bundleId"]
        failed = pipe.mlcd("deploy", "--env", "test", extra_env={"DSS_TEST_API_KEY": ""})
        assert failed.returncode == ExitCode.BAD_INPUT
        assert pipe.stage_file("deploy-test")["bundleId"] == bundle_id


def test_sigterm_ends_a_command_with_143_a_stage_file_and_one_line(tmp_path: Path) -> None:
    with start_pipeline_env(tmp_path, envs=("test",)) as pipe:
        pipe.automation["test"].set_faults({"seed": 1, "rules": [{"path": "projects", "latency": 30}]})
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlcd", "status", "--env", "test"],
            cwd=pipe.root,
            env=pipe.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # let it reach the slowed request (not a timing assertion)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert "Traceback" not in err
        assert [line for line in err.splitlines() if line.startswith("mlcd status")] == [
            "mlcd status: interrupted"
        ]
        stage = pipe.stage_file("status-test")
        assert stage["errorCategory"] == "interrupted"
        assert stage["exitCode"] == 143


def test_debug_shows_http_details_without_the_key(tmp_path: Path) -> None:
    with start_pipeline_env(tmp_path, envs=("test",)) as pipe:
        proc = pipe.mlcd("status", "--env", "test", "--debug")
        key = pipe.env["DSS_TEST_API_KEY"]
        assert proc.returncode == 0, proc.stderr
        assert "[mlcd DEBUG]" in proc.stdout
        assert key not in proc.stdout + proc.stderr
