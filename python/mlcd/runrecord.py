"""The run record, `<out-dir>/run.json`: what this pipeline run built and did.

`mlcd bundle` (or `mlcd fetch`) creates it; later stages read it and add to it.
Every save is atomic (temporary file, fsync, ``os.replace``): a crash mid-write
leaves the previous version intact. Updates from concurrent processes (parallel
Jenkins stages sharing a workspace) are serialised by a lock file and merged
into the latest version on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcd.errors import InputError
from mlcd.redact import redact

FILE_NAME = "run.json"


def utc_now_iso() -> str:
    """Current UTC time as ISO-8601 with milliseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (redacted, fsynced, replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = redact(json.dumps(payload, indent=2, sort_keys=True)) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f"{FILE_NAME}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"no run record at {path}", "run `mlcd bundle` (or `mlcd fetch --bundle-id ID`) first"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(
            f"run record {path} is unreadable or corrupt",
            "run `mlcd bundle` (or `mlcd fetch --bundle-id ID`) again to recreate it",
        ) from None
    if not isinstance(data, dict) or not data.get("bundleId"):
        raise InputError(
            f"run record {path} has no bundleId", "run `mlcd bundle` (or `mlcd fetch --bundle-id ID`) again"
        )
    return data


class RunRecord:
    """`run.json`: bundle id, sha256, size, archive, git sha, build, actor, per-environment state."""

    def __init__(self, out_dir: Path, data: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / FILE_NAME
        self.data = data
        self.data.setdefault("environments", {})

    @classmethod
    def create(cls, out_dir: Path, **fields: Any) -> RunRecord:
        """Start a new run record (replacing any previous one) with ``fields`` (camelCase keys)."""
        data: dict[str, Any] = {"createdAt": utc_now_iso(), "environments": {}}
        data.update(fields)
        if not data.get("bundleId"):
            raise ValueError("a run record needs a bundleId")
        if isinstance(data.get("archive"), Path):
            data["archive"] = str(data["archive"])
        record = cls(out_dir, data)
        with _locked(record.out_dir):
            record._write()
        return record

    @classmethod
    def load(cls, out_dir: Path) -> RunRecord:
        """Read the run record; InputError (exit 2) if it is missing or corrupt."""
        return cls(Path(out_dir), _read(Path(out_dir) / FILE_NAME))

    @classmethod
    def exists(cls, out_dir: Path) -> bool:
        """True when a run record file is present in ``out_dir``."""
        return (Path(out_dir) / FILE_NAME).is_file()

    # -- fields --------------------------------------------------------------------------------------
    @property
    def bundle_id(self) -> str:
        """The bundle this run built or fetched."""
        return str(self.data["bundleId"])

    @property
    def sha256(self) -> str:
        """sha256 of the bundle archive (hex)."""
        return str(self.data.get("sha256") or "")

    @property
    def size(self) -> int:
        """Size of the bundle archive in bytes."""
        return int(self.data.get("size") or 0)

    @property
    def archive(self) -> Path:
        """Path of the bundle archive on this machine."""
        value = self.data.get("archive")
        if value:
            return Path(str(value))
        return self.out_dir / "bundles" / f"{self.bundle_id}.zip"

    @property
    def project(self) -> str:
        """The DSS project key."""
        return str(self.data.get("project") or "")

    # -- updates -------------------------------------------------------------------------------------
    def env(self, name: str) -> dict[str, Any]:
        """The record of environment ``name`` (created empty if absent; call :meth:`save` to keep changes)."""
        envs: dict[str, Any] = self.data.setdefault("environments", {})
        entry: dict[str, Any] = envs.setdefault(name, {})
        return entry

    def update_env(self, name: str, **fields: Any) -> None:
        """Merge ``fields`` into environment ``name`` and save (merged with the file's latest state)."""
        with _locked(self.out_dir):
            self._refresh()
            self.env(name).update(fields)
            self._write()

    def update(self, **fields: Any) -> None:
        """Merge top-level ``fields`` (e.g. ``published={...}``) and save."""
        with _locked(self.out_dir):
            self._refresh()
            self.data.update(fields)
            self._write()

    def save(self) -> None:
        """Write the record atomically (this process's view wins for top-level keys it holds)."""
        with _locked(self.out_dir):
            on_disk = self._disk_or_none()
            if on_disk is not None and on_disk.get("bundleId") == self.data.get("bundleId"):
                envs = dict(on_disk.get("environments") or {})
                envs.update(self.data.get("environments") or {})
                self.data["environments"] = envs
            self._write()

    # -- internals -----------------------------------------------------------------------------------
    def _disk_or_none(self) -> dict[str, Any] | None:
        try:
            return _read(self.path)
        except InputError:
            return None

    def _refresh(self) -> None:
        on_disk = self._disk_or_none()
        if on_disk is None or on_disk.get("bundleId") != self.data.get("bundleId"):
            return
        mine = self.data.get("environments") or {}
        merged = on_disk
        envs = dict(merged.get("environments") or {})
        for name, entry in mine.items():
            envs[name] = {**envs.get(name, {}), **entry}
        merged["environments"] = envs
        merged.update({k: v for k, v in self.data.items() if k != "environments"})
        self.data = merged

    def _write(self) -> None:
        write_json_atomic(self.path, self.data)
