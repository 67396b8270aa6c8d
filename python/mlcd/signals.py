"""SIGTERM, SIGINT, SIGHUP: an :class:`~mlcd.errors.Interrupted` while a command works, nothing once done.

:func:`install` makes the first of these signals raise ``Interrupted`` in the main
thread (Jenkins' abort is a SIGTERM); the release core handles it like any failure
after activation (rolled back, or recorded as needing a person), and a repeated
signal while it does so is ignored, so that the clean-up itself is not interrupted.

:func:`finish` is called once the command's result is decided (the environment
verified and recorded, the exit code known). From then on the signals are ignored:
the little left to do (the stage file, the release page, the interpreter's exit)
cannot be stopped half-way, and a late signal cannot turn a recorded deploy into an
internal error or a killed process.
"""

from __future__ import annotations

import signal
import threading

from mlcd.errors import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _State:
    installed = False
    done = False
    seen: list[int] = []


def _handler(signum: int, frame: object) -> None:
    if _State.done or _State.seen:
        return
    _State.seen.append(signum)
    raise Interrupted(signal.Signals(signum).name, 128 + signum)


def install() -> None:
    """Raise :class:`Interrupted` on the first SIGTERM, SIGINT or SIGHUP (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _State.installed, _State.done, _State.seen = True, False, []
    for sig in SIGNALS:
        signal.signal(sig, _handler)


def finish() -> None:
    """The command's result is decided: ignore these signals from now on (see the module docstring)."""
    if not _State.installed:
        return
    _State.done = True  # first: a signal already caught but not yet handled no longer raises
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
