"""A tiny hostile HTTP server on loopback, and a way to run mlcd against it with its peak memory.

Each test gives the server one ``respond(handler)`` function that writes whatever
raw bytes the attack needs (a gzip bomb, a drip-fed answer, an endless download,
an error body echoing the API key). The mlcd run is a real subprocess whose
peak resident set size is read from ``VmHWM`` in ``/proc/<pid>/status`` while it
runs (``wait4``'s figure would include the memory of the forked test process).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

Respond = Callable[["Handler"], None]
DESIGN_KEY = "DSS_DESIGN_API_KEY"
TEST_KEY = "DSS_TEST_API_KEY"
REPO_TOKEN = "ARTIFACTS_TOKEN"


class Handler(BaseHTTPRequestHandler):
    """Hands every request to the server's ``respond`` function."""

    server: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle_one(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests.append(f"{self.command} {self.path}")
        self.server.respond(self)

    do_GET = do_PUT = do_POST = do_DELETE = handle_one

    def key(self) -> str:
        """The API key this request carried (HTTP Basic user, or Bearer token)."""
        auth = self.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme == "Basic":
            return base64.b64decode(value).decode().rsplit(":", 1)[0]
        return value

    def send(self, status: int, body: bytes, ctype: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, data: bytes, every: float) -> None:
        """Write ``data`` one byte at a time, ``every`` seconds apart, until done or stopped."""
        for i in range(len(data)):
            if self.server.stopping.is_set():
                return
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(every)


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, respond: Respond) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.respond = respond
        self.requests: list[str] = []
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def hostile(respond: Respond) -> Iterator[HostileServer]:
    """Serve ``respond`` on a free loopback port for the duration of the block."""
    server = HostileServer(respond)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Run:
    """A finished mlcd run: exit code, output, seconds, peak RSS in MiB."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mib: float


def write_config(root: Path, design: str, test: str | None = None, repo: str | None = None,
                 **top: Any) -> Path:  # fmt: skip
    """An mlcd.yaml whose nodes (and repository) are the given URLs; per-read timeouts are long."""
    config: dict[str, Any] = {"project": "P", "allow_insecure_http": True, **top}
    config["design"] = {"url": design, "api_key_env": DESIGN_KEY, "read_timeout": 30}
    if repo:
        config["artifact_repository"] = {"url": repo, "token_env": REPO_TOKEN}
    config["environments"] = [{"name": "test", "url": test or design, "api_key_env": TEST_KEY,
                               "read_timeout": 30, "tests": False}]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    path = root / "mlcd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_mlcd(root: Path, *args: str, keys: dict[str, str], env: dict[str, str] | None = None,
             timeout: float = 60) -> Run:  # fmt: skip
    """Run ``python -m mlcd ARGS`` in ``root`` (config ``root/mlcd.yaml``); kill it after ``timeout``."""
    child = {k: v for k, v in os.environ.items() if not k.startswith(("MLCD_", "BUILD_"))}
    child.update(keys)
    child.update(MLCD_CONFIG=str(root / "mlcd.yaml"), MLCD_OUT_DIR=str(root / ".mlcd"),
                 MLCD_LOCK_DIR=str(root / "locks"), PYTHONUNBUFFERED="1")  # fmt: skip
    child.update(env or {})
    out, err = root / "stdout.txt", root / "stderr.txt"
    started = time.monotonic()
    with open(out, "w") as o, open(err, "w") as e:
        cmd = [sys.executable, "-m", "mlcd", *args]
        proc = subprocess.Popen(cmd, cwd=root, env=child, stdout=o, stderr=e)
        peak = [0]
        watcher = threading.Thread(target=_watch_peak, args=(proc, peak), daemon=True)
        watcher.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        watcher.join(timeout=5)
    return Run(proc.returncode, out.read_text(), err.read_text(), time.monotonic() - started,
               peak[0] / 1024)  # fmt: skip


def _watch_peak(proc: subprocess.Popen[bytes], peak: list[int]) -> None:
    """Keep ``peak[0]`` at the process's VmHWM (kB) until it exits."""
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
