"""Fixtures of the stage integration tests: a stand-in pipeline and an nginx artifact repository."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.artifact_server import ArtifactServer, nginx_available
from support.pipeline_env import PipelineEnv, start_pipeline_env


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[PipelineEnv]:
    """Design node + automation nodes `test` and `prod`, sample project, mlcd.yaml, API keys."""
    with start_pipeline_env(tmp_path / "pipe", envs=("test", "prod")) as pipe:
        yield pipe


@pytest.fixture
def artifact_repo(tmp_path: Path) -> Iterator[ArtifactServer]:
    """nginx with WebDAV PUT on loopback, basic auth ci / a random password."""
    if not nginx_available():
        pytest.skip("nginx is not installed")
    with ArtifactServer.start(tmp_path / "repo", username="ci-user", password="repo-pw-Zq81x") as repo:
        yield repo
