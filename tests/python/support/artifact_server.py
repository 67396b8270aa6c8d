"""A throwaway artifact repository: nginx with WebDAV PUT on loopback (Artifactory/Nexus raw shape).

Usage::

    from support.artifact_server import ArtifactServer

    with ArtifactServer.start(tmp_path / "repo", username="ci", password="s3cret-pw") as repo:
        repo.url            # "http://127.0.0.1:PORT/mlcd-bundles"
        repo.store_dir      # files PUT under the URL land here (store_dir/<path>)
        repo.requests()     # access-log lines: [(method, path, status), ...]

PUT stores (201/204), GET serves, DELETE removes. With ``username``/``password``
every request needs HTTP Basic auth. nginx ignores ``X-Checksum-*`` headers, so
clients verify by reading back. :meth:`ArtifactServer.stop` stops nginx (idempotent).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REPO_PATH = "mlcd-bundles"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_available() -> bool:
    """True when an nginx binary is installed."""
    return Path(NGINX).exists()


class ArtifactServer:
    """One nginx process serving ``store_dir`` at ``http://127.0.0.1:PORT/mlcd-bundles``."""

    def __init__(self, base_dir: Path, port: int, username: str | None, password: str | None) -> None:
        self.base_dir = Path(base_dir)
        self.port = port
        self.username = username
        self.password = password
        self.store_root = self.base_dir / "store"
        self.store_dir = self.store_root / REPO_PATH
        self.url = f"http://127.0.0.1:{port}/{REPO_PATH}"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        base_dir: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        startup_timeout: float = 15.0,
    ) -> ArtifactServer:
        """Write an nginx config under ``base_dir`` and start nginx on a free loopback port."""
        for attempt in range(3):
            server = cls(base_dir, free_port(), username, password)
            try:
                server._spawn(startup_timeout)
                return server
            except RuntimeError:
                server.stop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _config(self) -> str:
        d = self.base_dir
        user = "user root;\n" if os.geteuid() == 0 else ""
        auth = ""
        if self.username is not None and self.password is not None:
            (d / "htpasswd").write_text(f"{self.username}:{{PLAIN}}{self.password}\n")
            auth = f'auth_basic "mlcd"; auth_basic_user_file {d}/htpasswd;'
        return f"""{user}daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    client_max_body_size 0;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.store_root};
        location / {{
            {auth}
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
    }}
}}
"""

    def _spawn(self, startup_timeout: float) -> None:
        (self.base_dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.base_dir / "nginx.conf"
        conf.write_text(self._config())
        self._proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.base_dir), "-e", str(self.base_dir / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start listening")

    def error_log(self) -> str:
        """Contents of nginx's error log (for diagnosing a test)."""
        path = self.base_dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request served so far, from the access log."""
        path = self.base_dir / "access.log"
        out: list[tuple[str, str, int]] = []
        if not path.exists():
            return out
        for line in path.read_text(errors="replace").splitlines():
            try:
                request = line.split('"')[1]
                status = int(line.split('"')[2].split()[0])
                method, target = request.split()[:2]
            except (IndexError, ValueError):
                continue
            out.append((method, target, status))
        return out

    @property
    def pid(self) -> int | None:
        """Process id of the nginx master, or None once stopped."""
        return self._proc.pid if self._proc is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx (SIGTERM, then SIGKILL); does nothing if already stopped."""
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
        self._proc = None

    def __enter__(self) -> ArtifactServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
