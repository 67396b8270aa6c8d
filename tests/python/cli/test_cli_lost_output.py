"""Losing stdout or stderr never interrupts a command (`mlcd deploy | head -6`).

Real processes against the stand-in: the reading end of the pipe is closed before
mlcd writes anything (the worst case of `| head`), or a real shell pipe into
`head` is used. The command must end with its usual exit code and its records.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.pipeline_env import PipelineEnv, start_pipeline_env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineEnv]:
    """A pipeline (design, test) with a bundle built and not deployed."""
    root = tmp_path_factory.mktemp("lostout")
    options = {"test": {"tests": {"scenarios": ["TEST_PASS"]}}}
    with start_pipeline_env(root / "pipe", envs=("test",), env_options=options) as pipe:
        pipe.set_design_variables(slow_seconds=0.1)
        pipe.env["MLCD_LOCK_DIR"] = str(root / "locks")
        proc = pipe.mlcd("bundle", "--build-number", "1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield pipe


def _closed_stdout(pipe: PipelineEnv, *args: str, close_stderr: bool = False) -> tuple[int, str]:
    """Run mlcd with its stdout pipe already closed by the reader; return (exit code, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcd", *args], cwd=pipe.root, env=pipe.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    if close_stderr:
        proc.stderr.close()
        err = ""
    else:
        err = proc.stderr.read()
        proc.stderr.close()
    return proc.wait(timeout=240), err


def _deployed(pipe: PipelineEnv, since: int) -> None:
    bundle = pipe.run_record()["bundleId"]
    assert pipe.run_record()["environments"]["test"]["state"] == "DEPLOYED"
    records = pipe.audit_records()[since:]
    deployments = [r for r in records if r["operation"] == "deploy"]
    assert deployments and deployments[-1]["outcome"] == "DEPLOYED", records
    assert deployments[-1]["bundleId"] == bundle
    assert pipe.stage_file("deploy-test")["outcome"] in ("SUCCESS", "NOOP")


@pytest.mark.parametrize("command", [("validate",), ("status", "--env", "test"), ("plan", "--env", "test")])
def test_read_only_commands_with_closed_stdout_end_normally(
    built: PipelineEnv, command: tuple[str, ...]
) -> None:
    """`mlcd status | head -1`: exit 0, nothing on stderr (no internal error, no BrokenPipeError)."""
    code, err = _closed_stdout(built, *command)
    assert err == ""
    assert code == 0


def test_deploy_with_closed_stdout_and_stderr_completes_and_records(built: PipelineEnv) -> None:
    """The deploy verifies and records although nobody reads its output."""
    since = len(built.audit_records())
    code, _ = _closed_stdout(built, "deploy", "--env", "test", close_stderr=True)
    assert code == 0
    _deployed(built, since)


def test_deploy_piped_into_head_completes_and_records(built: PipelineEnv, tmp_path: Path) -> None:
    """A real shell pipe: `mlcd deploy --env test | head -6`, deploying a newer bundle."""
    built.set_design_variables(model_version="2")
    proc = built.mlcd("bundle", "--build-number", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    since = len(built.audit_records())
    err = tmp_path / "stderr.txt"
    mlcd = f'"{sys.executable}" -m mlcd deploy --env test 2>"{err}"'
    script = f'{mlcd} | head -6 >/dev/null; exit "${{PIPESTATUS[0]}}"'
    run = subprocess.run(["bash", "-c", script], cwd=built.root, env=built.env, timeout=240, check=False)
    assert err.read_text() == ""
    assert run.returncode == 0
    _deployed(built, since)
