"""Helpers of the flow integration tests: build a bundle, read a node's active bundle, stage files, audit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.pipeline_env import PipelineEnv, key_env_name


def make_bundle(pipe: PipelineEnv, build: int = 1) -> dict[str, Any]:
    """Build this run's bundle with `mlcd bundle` (the real CLI); return the run record."""
    proc = pipe.mlcd("bundle", "--build-number", str(build), "--git-sha", f"{build:07d}abcdef")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return pipe.run_record()


def active_on(pipe: PipelineEnv, env: str) -> str | None:
    """The active bundle of the sample project, read on the automation node itself."""
    from mlcd.dss.node import DSSNode

    node = DSSNode(pipe.automation[env].url, pipe.keys[key_env_name(env)], name=env)
    try:
        return node.active_bundle_id(pipe.project_key)
    finally:
        node.close()


def deployments(pipe: PipelineEnv, env: str) -> list[str]:
    """Outcomes of the audit trail's `deployment` records of ``env``, in order."""
    records = pipe.audit_records()
    return [r["outcome"] for r in records if r["operation"] == "deployment" and r["environment"] == env]


def stage(pipe: PipelineEnv, name: str) -> dict[str, Any]:
    """A stage result file as a dict."""
    data = json.loads((pipe.out_dir / f"{name}.json").read_text())
    assert isinstance(data, dict)
    return data
