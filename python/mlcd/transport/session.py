"""HTTP sessions of every mlcd client: auth, TLS, identity encoding and a wall-clock deadline.

requests applies its timeouts per socket read, so a server that sends one byte
every few seconds never times out. Sessions made here carry a watchdog instead:
from the moment a request has been sent, its answer (headers and body) must be
complete within a :class:`Deadline`; when it passes, the connection's socket is
shut down, the read in progress ends, and the caller reports the deadline.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

from mlcd.redact import redact

log = logging.getLogger("mlcd.transport")

_current = threading.local()


class Deadline:
    """A wall-clock bound on one answer, counted from when the request has been sent.

    Used as a context manager around ``session.request``: the connection that sends
    the request arms it with its socket. :meth:`extend` moves the end (a download
    whose size became known); :meth:`close` disarms it. ``expired`` tells the caller
    why a read ended early.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.expired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self._closed = False

    def __enter__(self) -> Deadline:
        _current.deadline = self
        return self

    def __exit__(self, *exc: object) -> None:
        _current.deadline = None

    def arm(self, sock: socket.socket | None) -> None:
        """Watch ``sock``; the clock starts with the first socket armed."""
        if sock is None:
            return
        with self._lock:
            if self._closed:
                return
            self._socks.append(sock)
            if self.expired:
                _shut(sock)
            elif self._timer is None:
                self._start(self.seconds)

    def extend(self, seconds: float) -> None:
        """End ``seconds`` from now instead (no effect once expired or closed)."""
        with self._lock:
            if self._closed or self.expired:
                return
            if self._timer is not None:
                self._timer.cancel()
            self.seconds = float(seconds)
            self._start(self.seconds)

    def close(self) -> None:
        """Disarm: the answer is complete (or abandoned); never touch the socket again."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            self._socks.clear()

    def _start(self, seconds: float) -> None:
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.expired = True
            for sock in self._socks:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _arm_current(sock: socket.socket | None) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.arm(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        _arm_current(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        _arm_current(self.sock)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections arm the current :class:`Deadline` once a request is sent."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kw: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


_stream_deadlines: weakref.WeakKeyDictionary[requests.Response, Deadline] = weakref.WeakKeyDictionary()


def keep_deadline(resp: requests.Response, deadline: Deadline) -> None:
    """Leave ``deadline`` armed for a streamed ``resp`` (its body is read later)."""
    _stream_deadlines[resp] = deadline


def deadline_of(resp: requests.Response) -> Deadline | None:
    """The deadline still armed for a streamed response, if any."""
    return _stream_deadlines.get(resp)


def make_session(
    *,
    verify: bool | str = True,
    auth: AuthBase | tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    user_agent: str = "mlcd",
    session: requests.Session | None = None,
) -> requests.Session:
    """A session with auth, TLS verification, ``Accept-Encoding: identity`` and deadline-aware pools.

    ``session`` (tests) is configured in place and keeps its own adapters.
    """
    s = session or requests.Session()
    if session is None:
        s.mount("http://", DeadlineAdapter())
        s.mount("https://", DeadlineAdapter())
    if auth is not None:
        s.auth = auth
    s.verify = verify
    s.headers["User-Agent"] = user_agent
    s.headers["Accept-Encoding"] = "identity"
    s.headers.update(headers or {})
    return s


def warn_if_insecure(url: str, what: str) -> None:
    """Warn once per client that ``url`` is plain http:// (credentials travel unencrypted)."""
    if urlsplit(url).scheme == "http":
        log.warning(
            "%s uses plain http:// (%s): its credentials and data travel unencrypted "
            "(allowed by allow_insecure_http: true in mlcd.yaml)",
            what,
            redact(url),
        )
