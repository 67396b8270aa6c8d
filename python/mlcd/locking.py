"""The per project+environment deploy lock.

Two mlcd processes on one machine (one Jenkins agent) that deploy the same
project to the same environment are serialised by an exclusive ``fcntl.flock``
on ``<lock dir>/<project>-<env>.lock``. The holder writes who it is into the
file (pid, host, build URL, since) so a waiter can show it. The OS releases the
lock when the holder exits, even if it crashed. Across Jenkins agents the
pipeline's ``lock`` step does this job; this lock does not span machines.

The lock directory is private to the user: created with mode 0700, refused when
another user owns it. Lock files are opened without following symbolic links
and never created truncated, so another local user can neither make a deploy
overwrite a file of theirs choosing nor hold a deploy's lock.

The lock is re-entrant inside one process (``mlcd run`` deploys, tests and
rolls back under one hold).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from mlcd.errors import InputError, LockTimeout


@dataclass(frozen=True)
class LockHolder:
    """Who holds a deploy lock, as written into the lock file by the holder."""

    pid: int | None
    host: str | None
    build_url: str | None
    since: str | None
    command: str | None = None

    def describe(self) -> str:
        """One human-readable phrase: 'pid 123 on host agent-1 (build URL) since 2026-...'."""
        parts = [f"pid {self.pid}" if self.pid else "an unknown process"]
        if self.host:
            parts.append(f"on host {self.host}")
        if self.command:
            parts.append(f"running `mlcd {self.command}`")
        if self.build_url:
            parts.append(f"for build {self.build_url}")
        if self.since:
            parts.append(f"since {self.since}")
        return " ".join(parts)


def default_lock_dir() -> Path:
    """``$MLCD_LOCK_DIR``, else ``$XDG_RUNTIME_DIR/mlcd-locks``, else ``/tmp/mlcd-locks-<uid>``."""
    explicit = os.environ.get("MLCD_LOCK_DIR")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "mlcd-locks"
    return Path("/tmp") / f"mlcd-locks-{os.geteuid()}"


def private_lock_dir(directory: Path) -> None:
    """Create ``directory`` with mode 0700, or check an existing one is this user's own.

    An existing directory of this user with group/other bits is narrowed to 0700;
    one owned by another user (or a symbolic link another user made) is refused
    with InputError, before any lock file is opened in it.
    """
    fix = "set MLCD_LOCK_DIR to a directory only this user can write"
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)
        link = os.lstat(directory)
        info = os.stat(directory)
    except OSError as exc:
        problem = f"cannot create the deploy lock directory {directory}: {exc.strerror}"
        raise InputError(problem, fix) from None
    me = os.geteuid()
    for what, st in (("symbolic link", link), ("directory", info)):
        if st.st_uid != me:
            raise InputError(
                f"deploy lock {what} {directory} belongs to user id {st.st_uid}, not to this user ({me}); "
                "refusing to use it",
                fix,
            )
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"deploy lock directory {directory} is not a directory", fix)
    if stat.S_IMODE(info.st_mode) & 0o077:
        try:
            os.chmod(directory, 0o700)
        except OSError as exc:
            raise InputError(f"cannot make {directory} private (mode 0700): {exc.strerror}", fix) from None


def open_lock_file(path: Path) -> int:
    """Open (or create, mode 0600) a lock file without following a symbolic link; check it is ours.

    Never truncates on open. InputError (exit 2) for a link, a non-regular file or
    another user's file.
    """
    fix = f"remove {path} (nothing else may live in the lock directory) or set MLCD_LOCK_DIR"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"deploy lock file {path} is a symbolic link; refusing to follow it, nothing was changed", fix
            ) from None
        raise InputError(f"cannot open the deploy lock file {path}: {exc.strerror}", fix) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
        os.close(fd)
        raise InputError(
            f"deploy lock file {path} is not a regular file of this user (owner id {info.st_uid}, "
            f"{info.st_nlink} links); refusing to use it, nothing was changed",
            fix,
        )
    return fd


def lock_path(project: str, environment: str, directory: Path | None = None) -> Path:
    """The lock file of one project+environment."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{project}-{environment}")
    return (directory or default_lock_dir()) / f"{safe}.lock"


def read_holder(path: Path) -> LockHolder | None:
    """The holder recorded in a lock file, or None if it is empty or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "r", encoding="utf-8") as handle:
            text = handle.read(64 * 1024).strip()
        data = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        host=_str_or_none(data.get("host")),
        build_url=_str_or_none(data.get("buildUrl")),
        since=_str_or_none(data.get("since")),
        command=_str_or_none(data.get("command")),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_held_lock = threading.Lock()
_held: dict[str, tuple[IO[str], int]] = {}  # path -> (open file, depth)


@contextmanager
def deploy_lock(
    project: str,
    environment: str,
    timeout: float,
    *,
    build_url: str | None = None,
    command: str | None = None,
    directory: Path | None = None,
    on_wait: Callable[[LockHolder | None, Path], None] | None = None,
    poll: float = 0.2,
) -> Iterator[Path]:
    """Hold the deploy lock of ``project``/``environment`` for the ``with`` body.

    If another process holds it, ``on_wait(holder, path)`` is called once and
    this waits up to ``timeout`` seconds, then raises :class:`LockTimeout`
    naming the holder. Nothing is changed while waiting.
    """
    path = lock_path(project, environment, directory)
    private_lock_dir(path.parent)
    key = str(path.parent.resolve() / path.name)
    with _held_lock:
        entry = _held.get(key)
        if entry is not None:
            _held[key] = (entry[0], entry[1] + 1)
    if entry is not None:
        try:
            yield path
        finally:
            _release(key)
        return

    handle = os.fdopen(open_lock_file(path), "r+", encoding="utf-8")
    deadline = time.monotonic() + max(0.0, timeout)
    announced = False
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = read_holder(path)
            if not announced:
                announced = True
                if on_wait is not None:
                    on_wait(holder, path)
            if time.monotonic() >= deadline:
                handle.close()
                who = holder.describe() if holder else "another process"
                raise LockTimeout(
                    f"deploy lock for {project} on environment '{environment}' is held by {who}; "
                    f"gave up after {timeout:g}s, nothing was changed",
                    "wait for that deployment to finish, or raise timeouts.lock / --lock-timeout",
                ) from None
            time.sleep(poll)
    _write_holder(handle, build_url, command)
    with _held_lock:
        _held[key] = (handle, 1)
    try:
        yield path
    finally:
        _release(key)


def _write_holder(handle: IO[str], build_url: str | None, command: str | None) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "buildUrl": build_url,
        "command": command,
        "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    handle.seek(0)
    handle.truncate()  # our own regular file, checked by open_lock_file, and locked by us
    handle.write(json.dumps(info) + "\n")
    handle.flush()


def _release(key: str) -> None:
    with _held_lock:
        handle, depth = _held[key]
        if depth > 1:
            _held[key] = (handle, depth - 1)
            return
        del _held[key]
    try:
        handle.seek(0)
        handle.truncate()
        handle.flush()
    except OSError:
        pass
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()
