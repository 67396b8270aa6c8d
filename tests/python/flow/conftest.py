"""Fixtures of the flow integration tests: a stand-in pipeline (design + test + prod nodes)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.pipeline_env import PipelineEnv, start_pipeline_env


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[PipelineEnv]:
    """Design node + automation nodes `test` and `prod`, sample project SAMPLE, mlcd.yaml, API keys."""
    with start_pipeline_env(tmp_path / "pipe", envs=("test", "prod")) as p:
        p.env["MLCD_LOCK_DIR"] = str(tmp_path / "locks")
        yield p
