"""Fixtures of the reliability suite (tools in ``support/reltools.py``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.pipeline_env import PipelineEnv
from support.reltools import fast_pipeline


@pytest.fixture
def rpipe(tmp_path: Path) -> Iterator[PipelineEnv]:
    """A fast stand-in pipeline (design, test, prod; ``reltools.fast_pipeline``), stopped after it."""
    with fast_pipeline(tmp_path / "pipe") as pipe:
        yield pipe
