"""The audit trail, `<out-dir>/audit.jsonl`: one JSON line per action, append-only.

Each line holds ``time`` (ISO-8601 UTC), ``actor``, ``buildUrl``, ``node``,
``environment``, ``operation``, ``bundleId``, ``sha256``, ``outcome``,
``durationMs`` and ``detail``. Lines are redacted, written with one ``write`` on
a file opened for appending under an exclusive lock, and fsynced. The
``deployment`` operation is the per-environment success indicator; its outcome is
one of :data:`DEPLOYMENT_OUTCOMES`.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlcd.errors import MlcdError
from mlcd.redact import redact
from mlcd.runrecord import utc_now_iso

DEPLOYMENT_OUTCOMES = ("SUCCEEDED", "FAILED_ROLLED_BACK", "FAILED_UNCHANGED", "FAILED_NEEDS_ATTENTION")


class AuditTrail:
    """Append-only audit records for one actor and CI build."""

    def __init__(self, path: Path, actor: str, build_url: str | None) -> None:
        self.path = Path(path)
        self.actor = actor
        self.build_url = build_url
        self.started = time.monotonic()

    def record(
        self,
        operation: str,
        outcome: str,
        *,
        node: str | None = None,
        environment: str | None = None,
        bundle_id: str | None = None,
        sha256: str | None = None,
        duration_ms: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one record (redacted, fsynced).

        Defaults from the run record next to the audit file: an environment's
        record without ``bundle_id`` names the run's bundle, and a record of the
        run's bundle without ``sha256`` carries the run's sha256.
        """
        run_bundle, run_sha = self._run_record_bundle()
        if bundle_id is None and environment is not None:
            bundle_id = run_bundle
        if sha256 is None and bundle_id is not None and bundle_id == run_bundle:
            sha256 = run_sha
        entry = {
            "time": utc_now_iso(),
            "actor": self.actor,
            "buildUrl": self.build_url,
            "node": node,
            "environment": environment,
            "operation": operation,
            "bundleId": bundle_id,
            "sha256": sha256,
            "outcome": outcome,
            "durationMs": duration_ms,
            "detail": detail or {},
        }
        line = redact(json.dumps(entry, sort_keys=True, default=str).replace("\n", " ")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = line.encode("utf-8")
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def _run_record_bundle(self) -> tuple[str | None, str | None]:
        """(bundleId, sha256) of ``run.json`` beside the audit file, if readable."""
        try:
            data = json.loads((self.path.parent / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, None
        if not isinstance(data, dict):
            return None, None
        bundle, sha = data.get("bundleId"), data.get("sha256")
        return (bundle if isinstance(bundle, str) else None, sha if isinstance(sha, str) else None)

    @contextmanager
    def action(self, operation: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """Record ``operation`` as SUCCESS, or FAILED with its error, with its duration.

        ``fields`` are the keyword arguments of :meth:`record` (node, environment,
        bundle_id, sha256, detail); the yielded dict is merged into ``detail``.
        """
        detail: dict[str, Any] = dict(fields.pop("detail", None) or {})
        extra: dict[str, Any] = {}
        start = time.monotonic()
        try:
            yield extra
        except BaseException as exc:
            detail.update(extra)
            if isinstance(exc, MlcdError):
                detail["error"] = exc.one_line()
                detail["errorCategory"] = exc.category
            elif isinstance(exc, KeyboardInterrupt):
                detail["error"] = "interrupted"
            else:
                detail["error"] = f"{type(exc).__name__}: {exc}"
            self.record(
                operation,
                "FAILED",
                duration_ms=int((time.monotonic() - start) * 1000),
                detail=detail,
                **fields,
            )
            raise
        detail.update(extra)
        self.record(
            operation, "SUCCESS", duration_ms=int((time.monotonic() - start) * 1000), detail=detail, **fields
        )

    def deployment_outcome(
        self,
        environment: str,
        outcome: str,
        *,
        bundle_id: str | None,
        active_bundle_id: str | None,
        message: str,
        node: str | None = None,
        sha256: str | None = None,
        duration_ms: int | None = None,
    ) -> None:
        """Record the final ``deployment`` outcome of an environment (the success indicator).

        ``node`` defaults to the environment's name (its automation node), ``sha256``
        to the run record's when ``bundle_id`` is the run's bundle, ``duration_ms`` to
        the time since this trail was opened (the command's start).
        """
        if duration_ms is None:
            duration_ms = int((time.monotonic() - self.started) * 1000)
        if outcome not in DEPLOYMENT_OUTCOMES:
            raise ValueError(f"deployment outcome must be one of {DEPLOYMENT_OUTCOMES}, not {outcome!r}")
        self.record(
            "deployment",
            outcome,
            node=node or environment,
            environment=environment,
            bundle_id=bundle_id,
            sha256=sha256,
            duration_ms=duration_ms,
            detail={"activeBundleId": active_bundle_id, "message": message},
        )


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every record of an audit file, oldest first (skipping a torn last line, if any)."""
    records: list[dict[str, Any]] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict):
            records.append(item)
    return records
