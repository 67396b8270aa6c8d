"""Fakes for the DSS client's unit tests: an HTTP transport adapter and a clock.

The adapter is mounted on the client's own `requests.Session`, so everything
above the transport (auth, timeouts, retries, error mapping, streaming) is the
real client code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ProtocolError

from mlcd.dss.http import RetryPolicy
from mlcd.dss.node import DSSNode

API_KEY = "sk-unit-test-9f8e7d6c5b4a"


class FakeClock:
    """A monotonic + wall clock that only moves when `sleep` is called."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Seen:
    """One request the fake transport received."""

    method: str
    path: str  # after /public/api/
    query: dict[str, str]
    headers: CaseInsensitiveDict[str]
    body: bytes
    timeout: Any
    verify: Any
    chunk_sizes: list[int] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body.decode()) if self.body else None


class FakeRaw:
    """A urllib3-like raw body; can be cut off after `fail_after` bytes."""

    def __init__(self, body: bytes, fail_after: int | None = None) -> None:
        self._buf = io.BytesIO(body)
        self.fail_after = fail_after
        self.sent = 0

    def stream(self, amt: int, decode_content: bool = True) -> Iterator[bytes]:
        while True:
            limit = amt
            if self.fail_after is not None:
                limit = min(amt, self.fail_after - self.sent)
                if limit <= 0:
                    raise ProtocolError("Connection broken: IncompleteRead")
            chunk = self._buf.read(limit)
            if not chunk:
                return
            self.sent += len(chunk)
            yield chunk

    def read(self, amt: int | None = None) -> bytes:
        return self._buf.read(amt)

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class Reply:
    """What the fake answers: status, JSON or bytes, headers, or an exception to raise."""

    def __init__(
        self,
        status: int = 200,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        raise_exc: BaseException | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.status = status
        self.body = (
            body if body is not None else (b"" if json_body is None else json.dumps(json_body).encode())
        )
        self.headers = dict(headers or {})
        if json_body is not None:
            self.headers.setdefault("Content-Type", "application/json")
        self.raise_exc = raise_exc
        self.fail_after = fail_after


Handler = Callable[[Seen], Reply]


class FakeTransport(BaseAdapter):
    """Answers requests with a handler; records every request (body fully read, chunk sizes kept)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.seen: list[Seen] = []

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        assert parts.path.startswith("/public/api/"), parts.path
        body = request.body
        chunks: list[int] = []
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            pieces = []
            for piece in body:
                chunks.append(len(piece))
                pieces.append(piece)
            data = b"".join(pieces)
        seen = Seen(
            method=request.method or "",
            path=parts.path[len("/public/api/") :],
            query={k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers=CaseInsensitiveDict(request.headers),
            body=data,
            timeout=timeout,
            verify=verify,
            chunk_sizes=chunks,
        )
        self.seen.append(seen)
        reply = self.handler(seen)
        if reply.raise_exc is not None:
            raise reply.raise_exc
        resp = requests.Response()
        resp.status_code = reply.status
        resp.headers = CaseInsensitiveDict(reply.headers)
        resp.raw = FakeRaw(reply.body, reply.fail_after)
        resp.url = request.url or ""
        resp.request = request
        resp.reason = "Fake"
        resp.encoding = "utf-8"
        return resp

    def close(self) -> None:
        pass

    def count(self, method: str, path_suffix: str) -> int:
        return sum(1 for s in self.seen if s.method == method and s.path.endswith(path_suffix))


def make_node(
    handler: Handler,
    clock: FakeClock,
    *,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> tuple[DSSNode, FakeTransport]:
    """A real DSSNode whose session talks to a FakeTransport."""
    transport = FakeTransport(handler)
    session = requests.Session()
    session.mount("http://", transport)
    session.mount("https://", transport)
    node = DSSNode(
        kwargs.pop("url", "http://dss.example:11200"),
        kwargs.pop("api_key", API_KEY),
        name=kwargs.pop("name", "automation-test"),
        retry=retry or RetryPolicy(max_attempts=4, max_total_s=30.0, initial_s=0.5, max_wait_s=4.0),
        sleep=clock.sleep,
        clock=clock.monotonic,
        wall=clock.wall,
        session=session,
        **kwargs,
    )
    return node, transport


def dss_error(
    status: int, code: str | None = None, message: str = "boom", error_type: str | None = None
) -> Reply:
    """A DSS-style JSON error answer."""
    body: dict[str, Any] = {
        "errorType": error_type or "com.dataiku.dip.exceptions.CodedException",
        "message": message,
        "detailedMessage": message,
    }
    if code:
        body["code"] = code
    return Reply(status, json_body=body)
