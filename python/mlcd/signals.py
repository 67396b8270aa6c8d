"""SIGTERM, SIGINT, SIGHUP: an :class:`~mlcd.errors.Interrupted` while a command works, nothing once done.

:func:`install` makes the first of these signals raise ``Interrupted`` in the main
thread (Jenkins' abort is a SIGTERM); the release core handles it like any failure
after activation (rolled back, or recorded as needing a person), and a repeated
signal while it does so is ignored, so that the clean-up itself is not interrupted.

:func:`finish` is called once the command's result is decided (the environment
verified and recorded, the exit code known). From then on the signals are ignored:
the little left to do (the stage file, the release page, the interpreter's exit)
cannot be stopped half-way, and a late signal cannot turn a recorded deploy into an
internal error or a killed process. (Called in-process, e.g. ``main(argv)`` in a test, the
caller's own handlers are put back instead.)
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from mlcd.errors import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _State:
    installed = False
    process = True  # mlcd owns the process (else: called in-process, e.g. by a test)
    done = False
    seen: list[int] = []
    previous: dict[int, Any] = {}


def _handler(signum: int, frame: object) -> None:
    if _State.done or _State.seen:
        return
    _State.seen.append(signum)
    raise Interrupted(signal.Signals(signum).name, 128 + signum)


def install(*, process: bool = True) -> None:
    """Raise :class:`Interrupted` on the first SIGTERM, SIGINT or SIGHUP (main thread only).

    ``process``: mlcd owns the process (its entry point); else :func:`finish` gives the
    caller its own handlers back instead of ignoring the signals.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    _State.installed, _State.process, _State.done, _State.seen = True, process, False, []
    _State.previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, _handler)


def finish() -> None:
    """The command's result is decided: ignore these signals from now on (see the module docstring).

    Called in-process (``install(process=False)``), the caller's own handlers come back instead.
    """
    if not _State.installed:
        return
    _State.done = True  # first: a signal already caught but not yet handled no longer raises
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            before = _State.previous.get(sig)
            if _State.process:
                signal.signal(sig, signal.SIG_IGN)
            else:
                signal.signal(sig, signal.SIG_DFL if before is None else before)
