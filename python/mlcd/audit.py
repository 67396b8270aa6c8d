"""The audit trail, `<out-dir>/audit.jsonl`: one JSON line per action, append-only.

Each line holds ``time`` (ISO-8601 UTC), ``actor``, ``buildUrl``, ``node``,
``environment``, ``operation``, ``bundleId``, ``sha256``, ``outcome``,
``durationMs`` and ``detail``. Lines are redacted, written with one ``write`` on
a file opened for appending under an exclusive lock, and fsynced. The
``deployment`` operation is the per-environment success indicator; its outcome is
one of :data:`DEPLOYMENT_OUTCOMES`.

The trail is tamper-evident: each line also holds ``prev`` (the previous line's
``mac``, empty on the first line) and ``mac``, an HMAC-SHA256 under the signing
key over the line without ``mac`` (``hmac-sha256:<hex>``), or a plain SHA-256
(``sha256:<hex>``) when no signing key is configured. :func:`verify_chain` names
the first line that was edited, inserted, removed or cannot be parsed.
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

from mlcd.errors import InputError, MlcdError
from mlcd.redact import redact
from mlcd.runrecord import utc_now_iso
from mlcd.signing import canonical, chain_mac, chain_mac_problem

DEPLOYMENT_OUTCOMES = ("SUCCEEDED", "FAILED_ROLLED_BACK", "FAILED_UNCHANGED", "FAILED_NEEDS_ATTENTION")
CHAIN_FIELDS = ("prev", "mac")
_TAIL = 1024 * 1024  # bytes read back to find the last line's MAC


class AuditChainError(InputError):
    """The audit trail was edited, truncated at the start, or holds a line that is not a record."""

    category = "audit_chain"


class AuditTrail:
    """Append-only audit records for one actor and CI build, chained by ``key`` (see the module doc)."""

    def __init__(self, path: Path, actor: str, build_url: str | None, *, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.actor = actor
        self.build_url = build_url
        self.started = time.monotonic()
        self._key = key

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
        clean = _redacted(json.loads(json.dumps(entry, default=str)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            clean["prev"] = _last_mac(fd)
            clean["mac"] = chain_mac(self._key, canonical(clean))
            data = (json.dumps(clean, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
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


def _redacted(value: Any) -> Any:
    """``value`` (parsed JSON) with every registered secret masked in its strings."""
    if isinstance(value, dict):
        return {redact(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return redact(value) if isinstance(value, str) else value


def _last_mac(fd: int) -> str:
    """The ``mac`` of the file's last line ("" for an empty file; a hash of a line that has none)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return ""
    start = max(0, size - _TAIL)
    tail = os.pread(fd, size - start, start).rstrip(b"\n")
    last = tail.rsplit(b"\n", 1)[-1]
    try:
        mac = json.loads(last).get("mac")
    except (ValueError, AttributeError):
        mac = None
    return str(mac) if mac else chain_mac(None, last)


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every non-empty line; [] when the file does not exist."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise AuditChainError(f"cannot read audit trail {path}: {reason}", "check the file") from None
    return [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _parse(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        item = None
    if not isinstance(item, dict):
        raise _broken(path, number, "it is not a JSON record")
    return item


def _broken(path: Path, number: int, problem: str) -> AuditChainError:
    return AuditChainError(
        f"audit trail {path} is broken at line {number}: {problem}; nothing is reported from it",
        "keep the file as evidence and compare it with the copy archived by the build "
        "(docs/security.md#audit-trail); run `mlcd audit verify` after restoring it",
    )


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every record of an audit file, oldest first, without its chain fields.

    A line that is not a JSON record raises :class:`AuditChainError` (exit 2) naming it.
    """
    records: list[dict[str, Any]] = []
    for number, line in _lines(Path(path)):
        item = _parse(Path(path), number, line)
        records.append({k: v for k, v in item.items() if k not in CHAIN_FIELDS})
    return records


def verify_chain(path: Path, keys: list[bytes], *, require_key: bool) -> int:
    """Check every line's MAC and link; return the number of records.

    ``keys``: the signing keys to accept (current, previous); ``require_key``: every
    line must be an HMAC (a signing key is configured, so a plain SHA-256 line is a
    downgrade). Raises :class:`AuditChainError` naming the first bad line.
    """
    prev = ""
    count = 0
    for number, line in _lines(Path(path)):
        item = _parse(Path(path), number, line)
        if "mac" not in item or "prev" not in item:
            raise _broken(path, number, "it carries no chain fields (prev, mac): added or rewritten by hand")
        if item["prev"] != prev:
            what = (
                "it does not follow the line before it (a line was removed, inserted or reordered)"
                if count
                else "the trail does not start at its first record (lines were removed)"
            )
            raise _broken(path, number, what)
        mac = item.pop("mac")
        problem = chain_mac_problem(mac, canonical(item), keys, require_key)
        if problem:
            raise _broken(path, number, problem)
        prev = str(mac)
        count += 1
    return count
