"""`mlcd retrain` killed (SIGTERM, as Jenkins aborts) after the training activated a new version."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from trainproject import RETRAIN, SAVED_MODEL, retrain_project

from support.pipeline_env import start_pipeline_env


def saved_model(node: Any) -> dict[str, Any]:
    resp = requests.get(
        f"{node.url}/__sim__/savedmodels/SAMPLE/{SAVED_MODEL}", auth=(node.api_key, ""), timeout=10
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


@pytest.mark.slow
def test_sigterm_after_training_restores_the_champion(tmp_path: Path) -> None:
    project = retrain_project(
        tmp_path / "fixture", steps_after=[{"id": "publish", "type": "wait", "seconds": 30}]
    )
    with start_pipeline_env(tmp_path / "pipe", envs=("prod",), project=project) as pipe:
        pipe.env["MLCD_LOCK_DIR"] = str(tmp_path / "locks")
        for args in (("bundle", "--build-number", "1"), ("deploy", "--env", "prod")):
            assert pipe.mlcd(*args).returncode == 0
        pipe.config["continuous_training"] = {
            "retrain_scenario": RETRAIN,
            "models": {SAVED_MODEL: {"metric": "auc"}},
        }
        pipe.write_config()
        node = pipe.automation["prod"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlcd", "retrain", "--env", "prod"],
            cwd=pipe.root,
            env=pipe.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while len(saved_model(node)["versions"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        new = saved_model(node)["activeVersion"]
        assert new != "initial"  # the training activated its version; the scenario is still running
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 4, err
        assert (
            "the retrain stopped: interrupted" in err and "champion initial is active again (verified)" in err
        )
        assert saved_model(node)["activeVersion"] == "initial"
        runs = requests.get(f"{node.url}/public/api/projects/SAMPLE/scenarios/{RETRAIN}/get-last-runs",
                            auth=(node.api_key, ""), timeout=10).json()  # fmt: skip
        assert runs[0]["result"]["outcome"] == "ABORTED"  # the retrain does not go on unattended
        records = [json.loads(line) for line in (pipe.out_dir / "audit.jsonl").read_text().splitlines()]
        assert [r["outcome"] for r in records if r["operation"] == "deployment"][-1] == "FAILED_ROLLED_BACK"
        (scenario,) = [r for r in records if r["operation"] == "retrain_scenario"]
        assert (scenario["outcome"], scenario["detail"]["aborted"]) == ("ERROR", [RETRAIN])
