"""A signal that lands once `mlcd deploy` has verified and recorded the deploy changes nothing.

The deploy's stage file is written after the release core recorded the deploy; the
signal is sent the moment it appears, while the command writes the release page and
exits. Before :func:`mlcd.signals.finish` such a signal escaped as a traceback and
exit 1 ("internal error") or killed the process (-15) although the environment was
deployed and recorded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.pipeline_env import PipelineEnv
from support.reltools import fast_pipeline, reader

ENV = "test"


def _stage_file_written(path: Path, before: int, proc: subprocess.Popen[str]) -> bool:
    give_up = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < give_up:
        try:
            if path.stat().st_mtime_ns != before:
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    return False


@pytest.mark.reliability
def test_a_signal_after_the_deploy_is_recorded_leaves_its_success(tmp_path: Path) -> None:
    with fast_pipeline(tmp_path / "pipe") as pipe:
        assert pipe.mlcd("bundle", "--build-number", "0").returncode == 0
        assert pipe.mlcd("deploy", "--env", ENV).returncode == 0
        for k, sig in enumerate(("SIGTERM", "SIGINT", "SIGHUP"), start=1):
            assert pipe.mlcd("bundle", "--build-number", str(k)).returncode == 0
            deploy_then_signal(pipe, sig)


def deploy_then_signal(pipe: PipelineEnv, sig: str) -> None:
    """Deploy; send ``sig`` the moment its stage file is written; check the success stands."""
    new = str(pipe.run_record()["bundleId"])
    stage = pipe.out_dir / f"deploy-{ENV}.json"
    before = stage.stat().st_mtime_ns
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcd", "deploy", "--env", ENV], cwd=pipe.root, env=pipe.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sent = _stage_file_written(stage, before, proc) and proc.poll() is None
    if sent:
        proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert sent, "the deploy ended before the signal could be sent"
    assert proc.returncode == 0, (sig, err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert json.loads(stage.read_text(encoding="utf-8"))["outcome"] == "SUCCESS"
    assert pipe.run_record()["environments"][ENV]["state"] == "DEPLOYED"
    r = reader(pipe, ENV)
    try:
        assert r.active(pipe.project_key) == new
    finally:
        r.close()
    status = pipe.mlcd("status", "--env", ENV)
    assert status.returncode == 0 and new in status.stdout, status.stdout + status.stderr
