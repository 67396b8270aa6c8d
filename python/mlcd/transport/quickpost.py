"""A light HTTP POST client for measuring a service under load (the API load gate).

``requests`` spends more CPU per call than the service it measures when both share a
machine, so the load gate's own overhead would set its numbers. This client sends
one POST on a kept connection (``http.client``), reconnecting when the server closes
it; each answer is bounded in time (socket timeout) and size (``max_bytes``). TLS uses
the same ``verify`` as the rest of mlcd (True, False or a CA bundle path).
"""

from __future__ import annotations

import base64
import http.client
import ssl
from urllib.parse import urlsplit


class PostError(Exception):
    """No answer: connection refused or reset, timeout, TLS failure."""


class QuickPoster:
    """POSTs to one URL's host over a kept connection (one instance per thread)."""

    def __init__(
        self, url: str, *, api_key: str | None, verify: bool | str, timeout: float, max_bytes: int
    ) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.headers = {"Content-Type": "application/json", "Accept-Encoding": "identity",
                        "User-Agent": "mlcd-api"}  # fmt: skip
        if api_key:
            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()
        self.context: ssl.SSLContext | None = None
        if self.https:
            self.context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body up to ``max_bytes + 1`` bytes); PostError when there is no answer."""
        conn = self._connection()
        try:
            conn.request("POST", path, body=body, headers=self.headers)
            resp = conn.getresponse()
            data = resp.read(self.max_bytes + 1)
            if resp.will_close or len(data) > self.max_bytes:
                self.close()
            return resp.status, data
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise PostError(type(exc).__name__) from None

    def close(self) -> None:
        """Drop the connection (the next post opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
