"""Start and stop stand-in DSS nodes as subprocesses (for tests, benchmarks and the demo).

The API key goes to the child through ``MLCD_SIM_API_KEY``, never on its command
line. The child prints ``ready <base-url>`` once it listens; :meth:`SimNode.start`
waits for that line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from mlcd.sim.procs import kill_orphaned_scripts

API_KEY_ENV = "MLCD_SIM_API_KEY"


class SimStartError(RuntimeError):
    """The stand-in node did not come up."""


class SimNode:
    """A running stand-in node (one subprocess)."""

    def __init__(
        self,
        role: str,
        data_dir: Path,
        api_key: str,
        node_name: str,
        tls_cert: Path | None,
        tls_key: Path | None,
        faults: dict[str, Any] | None,
        startup_timeout: float,
        port: int = 0,
    ) -> None:
        self.role = role
        self.data_dir = Path(data_dir)
        self.api_key = api_key
        self.node_name = node_name
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.startup_timeout = startup_timeout
        self.url = ""
        self.port = port
        self._faults = faults
        self._proc: subprocess.Popen[str] | None = None
        self._returncode: int | None = None
        self._readers: list[threading.Thread] = []
        self._stderr_lines: list[str] = []
        self.test_control = True

    # -- life cycle -------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        role: str,
        data_dir: Path,
        api_key: str = "sim-api-key",
        node_name: str | None = None,
        connections: dict[str, dict[str, Any]] | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        faults: dict[str, Any] | None = None,
        startup_timeout: float = 20.0,
        port: int = 0,
        test_control: bool = True,
    ) -> SimNode:
        """Start a node on a free loopback port and wait until it is ready.

        ``test_control`` serves the ``/__sim__/`` routes (faults, stats), which need the node's key.

        ``connections`` (if given) is written to ``<data_dir>/node.json`` together
        with the node name; an existing ``node.json`` is otherwise left as it is.
        """
        if role not in ("design", "automation", "deployer", "apideployer", "apinode"):
            raise ValueError(
                f"role must be 'design', 'automation', 'deployer', 'apideployer' or 'apinode', not {role!r}"
            )
        data_dir = Path(data_dir)
        (data_dir / "projects").mkdir(parents=True, exist_ok=True)
        name = node_name or role
        node_json = data_dir / "node.json"
        if connections is not None or not node_json.exists():
            node_json.write_text(json.dumps({"nodeName": name, "connections": connections or {}}, indent=2))
        node = cls(role, data_dir, api_key, name, tls_cert, tls_key, faults, startup_timeout, port)
        node.test_control = test_control
        node._spawn()
        return node

    def _spawn(self) -> None:
        argv = [
            sys.executable, "-m", "mlcd", "sim", "serve",
            "--role", self.role,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--node-name", self.node_name,
        ]  # fmt: skip
        if self.test_control:
            argv.append("--test-control")
        if self.tls_cert is not None and self.tls_key is not None:
            argv += ["--tls-cert", str(self.tls_cert), "--tls-key", str(self.tls_key)]
        if self._faults is not None:
            fd, faults_path = tempfile.mkstemp(prefix="sim-faults-", suffix=".json", dir=self.data_dir)
            with os.fdopen(fd, "w") as fh:
                json.dump(self._faults, fh)
            argv += ["--faults", faults_path]
        env = dict(os.environ)
        env[API_KEY_ENV] = self.api_key
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._stderr_lines = []
        self._returncode = None
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._proc = proc
        result: list[str] = []

        def read_ready() -> None:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            result.append(line)
            # keep draining so the child never blocks on a full pipe
            for _ in proc.stdout:
                pass

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                if len(self._stderr_lines) < 200:
                    self._stderr_lines.append(line.rstrip("\n"))

        self._readers = [
            threading.Thread(target=read_ready, daemon=True),
            threading.Thread(target=read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while not result and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        if not result or not result[0].startswith("ready "):
            self.stop()
            detail = " | ".join(self._stderr_lines[-5:]) or "no output"
            raise SimStartError(f"stand-in {self.role} node did not start: {detail}")
        self.url = result[0].split(" ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the node (SIGTERM, then SIGKILL after ``timeout``); does nothing if already stopped."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
                kill_orphaned_scripts(self.data_dir / "state")
        self._returncode = proc.returncode
        for reader in self._readers:
            reader.join(timeout=5)  # they end at EOF, now that the process is gone
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same data dir, port and start-up faults (state survives)."""
        self.stop()
        self._spawn()

    def kill(self) -> None:
        """Kill the node abruptly (SIGKILL), as a crash would, and the step scripts it was running."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self.stop()
        kill_orphaned_scripts(self.data_dir / "state")

    @property
    def pid(self) -> int | None:
        """Process id of the running node, or None once stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status of the node process once it ended (None while running)."""
        return self._returncode if self._proc is None else self._proc.poll()

    @property
    def api_url(self) -> str:
        """Base of the DSS public API (``<url>/public/api/``)."""
        return self.url + "/public/api/"

    @property
    def stderr_lines(self) -> list[str]:
        """The first lines the node wrote on stderr (for diagnosing a test)."""
        return list(self._stderr_lines)

    def __enter__(self) -> SimNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test control -----------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        verify: bool | str = True
        if self.url.startswith("https"):
            verify = str(self.tls_cert) if self.tls_cert is not None else False
        resp = requests.request(
            method,
            f"{self.url}/__sim__/{path}",
            json=body,
            timeout=10,
            verify=verify,
            auth=(self.api_key, ""),
        )
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def set_faults(self, plan: dict[str, Any]) -> None:
        """Install a fault plan (``{"seed": 7, "rules": [...]}``, see docs/stand-in.md)."""
        self._control("PUT", "faults", plan)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._control("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        """Request counts since start: ``{"total": n, "routes": {"GET /projects/<projectKey>/": n}}``."""
        result: dict[str, Any] = self._control("GET", "stats")
        return result

    def reset_stats(self) -> None:
        """Zero the request counters."""
        self._control("DELETE", "stats")
