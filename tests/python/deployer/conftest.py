"""Fixtures of the Project Deployer tests: a stand-in pipeline deployed through a stand-in deployer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.deployer_env import DeployerPipeline, start_deployer_pipeline


@pytest.fixture
def dp(tmp_path: Path) -> Iterator[DeployerPipeline]:
    """Design node, automation nodes `test` and `prod`, a deployer with infras `test-infra`/`prod-infra`."""
    with start_deployer_pipeline(tmp_path / "pipe", envs=("test", "prod")) as p:
        p.pipe.env["MLCD_LOCK_DIR"] = str(tmp_path / "locks")
        yield p
