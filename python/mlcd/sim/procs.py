"""Step-script processes of a node: their environment, and killing the ones a dead node left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

PID_FILE = "script.pid"

#: the only variables of the node's own environment a step script inherits (never API keys)
SCRIPT_ENV_ALLOWED = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
                      "SYSTEMROOT", "COVERAGE_PROCESS_START")  # fmt: skip


def script_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment of a step script: an allow-list of the node's variables (and ``LC_*``) plus ``extra``.

    The node was started by a launcher whose environment may hold other nodes' API keys;
    none of it reaches a script unless allow-listed here.
    """
    env = {k: v for k, v in os.environ.items() if k in SCRIPT_ENV_ALLOWED or k.startswith("LC_")}
    env.update(extra)
    return env


def kill_orphaned_scripts(state_dir: Path) -> int:
    """Kill step scripts left running by a node that died (SIGKILL); returns how many.

    Each running ``python`` step has a ``script.pid`` file; a process is killed
    only if its command line still names that script (no pid-reuse accidents).
    """
    killed = 0
    for pid_file in state_dir.glob(f"runs/*/*/*/steps/*/{PID_FILE}"):
        try:
            info = json.loads(pid_file.read_text(encoding="utf-8"))
            pid, script = int(info["pid"]), str(info["script"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, KeyError, TypeError):
            cmdline, pid, script = [], 0, ""
        if pid > 0 and script and script.encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed += 1
                _wait_gone(pid)
        pid_file.unlink(missing_ok=True)
    return killed


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    """Wait until ``pid`` has exited (gone, or a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
        except OSError:
            return
        if "\nState:\tZ" in status:
            return
        time.sleep(0.01)
