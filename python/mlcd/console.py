"""Console output that can be lost without interrupting a command.

Output is the least important thing a command does: ``mlcd deploy | head -6``
closes the pipe after six lines, and the deploy must still verify and record
what it did. :func:`install` wraps ``sys.stdout`` and ``sys.stderr`` so that a
write to a closed pipe (or a full disk, a vanished terminal) is dropped: the
stream's file descriptor is pointed at ``/dev/null``, later writes go nowhere, and
the command carries on. Its exit code, stage files and audit trail are unchanged.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class RobustStream:
    """A text stream wrapper whose writes and flushes never raise once the other end is gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.lost = False

    def _lose(self) -> None:
        """Point the descriptor at /dev/null so later (and interpreter-exit) flushes succeed."""
        self.lost = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # no descriptor (an in-memory stream): dropping writes is enough

    def write(self, text: str) -> int:
        """Write ``text``; after the first failure, drop it. Returns ``len(text)`` either way."""
        if not self.lost:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self._lose()
        return len(text)

    def flush(self) -> None:
        """Flush, unless the other end is gone."""
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._lose()

    def writelines(self, lines: Any) -> None:
        """Write each line (see :meth:`write`)."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`RobustStream` (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RobustStream):
            setattr(sys, name, RobustStream(stream))


def human_size(size: int) -> str:
    """``size`` bytes for a person: '812 bytes', '48 KB', '3.4 MB', '1.2 GB' (powers of 1000)."""
    if size < 1000:
        return f"{size} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        value = size / scale
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
