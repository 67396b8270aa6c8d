"""Where delivery records come from: audit trails on disk, and the trails Jenkins archived with builds.

A trail's project is the ``project`` of the run record next to it (``run.json``,
written by `mlcd bundle`/`mlcd fetch`); a trail without one counts as project ``?``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlcd.errors import InputError
from mlcd.metrics.delivery import Record, records_of

MAX_TRAIL_BYTES = 64 * 1024 * 1024


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            yield line


def _project(run_json: bytes | None) -> str:
    try:
        data = json.loads(run_json or b"{}")
    except ValueError:
        return "?"
    project = data.get("project") if isinstance(data, dict) else None
    return project if isinstance(project, str) and project else "?"


def trail_files(paths: list[Path]) -> list[Path]:
    """``audit.jsonl`` files: each path is one, or a directory searched for them (recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob("audit.jsonl")))
        else:
            raise InputError(f"no audit trail at {path}", "pass an audit.jsonl or a directory holding some")
    return found


def records_from_files(files: list[Path]) -> list[Record]:
    """The records of every trail, each with its project."""
    out: list[Record] = []
    for path in files:
        if path.stat().st_size > MAX_TRAIL_BYTES:
            raise InputError(f"audit trail {path} is larger than 64 MiB", "pass a smaller trail")
        run = path.parent / "run.json"
        project = _project(run.read_bytes() if run.is_file() else None)
        out.extend(records_of(_lines(path.read_bytes()), project, str(path)))
    return out


def artifact(server: Any, job: str, number: int, path: str) -> bytes:
    """An archived file of a build (bytes; empty when Jenkins has none)."""
    from mlcd.jenkins.client import jenkins_call

    data = jenkins_call(
        f"reading {path} of {job} #{number}", lambda: server.get_build_artifact_as_bytes(job, number, path)
    )
    return bytes(data or b"")


def records_from_builds(server: Any, builds: list[tuple[str, int, list[str]]]) -> list[Record]:
    """The records of the ``audit.jsonl`` each build archived (``(job, number, artifact paths)``)."""
    out: list[Record] = []
    for job, number, artifacts in builds:
        for trail in (a for a in artifacts if a.endswith("audit.jsonl")):
            run_path = trail[: -len("audit.jsonl")] + "run.json"
            run = artifact(server, job, number, run_path) if run_path in artifacts else None
            lines = _lines(artifact(server, job, number, trail))
            out.extend(records_of(lines, _project(run), f"{job} #{number}"))
    return out
