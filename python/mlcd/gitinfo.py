"""Git facts for bundles: the short commit sha and bounded release notes.

Every function degrades gracefully outside a git repository (or without git):
the sha becomes ``nogit`` and the release notes say so. Git is run with a
timeout and without a shell.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

NO_GIT = "nogit"
MAX_NOTES_CHARS = 4000
MAX_LOG_LINES = 50
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _git(args: list[str], cwd: Path | None) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()


def short_sha(cwd: Path | None = None) -> str:
    """``git rev-parse --short=8 HEAD``, or ``nogit`` outside a repository."""
    out = _git(["rev-parse", "--short=8", "HEAD"], cwd)
    return out if out else NO_GIT


def sanitize_sha(value: str) -> str:
    """A sha given on the command line, reduced to safe characters and 8 characters max for ids."""
    cleaned = _SAFE.sub("", value.strip())
    return cleaned[:8] if cleaned else NO_GIT


def release_notes(cwd: Path | None = None, max_chars: int = MAX_NOTES_CHARS) -> str:
    """Last commit subject and the short log since the previous tag (bounded), or a note outside git."""
    subject = _git(["log", "-1", "--format=%h %s"], cwd)
    if subject is None:
        return "no git repository: release notes unavailable"
    tag = _git(["describe", "--tags", "--abbrev=0", "HEAD^"], cwd)
    rng = [f"{tag}..HEAD"] if tag else []
    log = (
        _git(["log", "--no-merges", f"--max-count={MAX_LOG_LINES}", "--format=- %h %s (%an)", *rng], cwd)
        or ""
    )
    since = f"since {tag}" if tag else "recent commits"
    notes = f"{subject}\n\nChanges ({since}):\n{log}".strip()
    if len(notes) > max_chars:
        notes = notes[: max_chars - 20].rstrip() + "\n… (truncated)"
    return notes
