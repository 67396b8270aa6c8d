"""Fault injection and request statistics, as WSGI middleware around the DSS routes.

A fault plan (``{"seed": 7, "rules": [...]}``) makes matching requests slow, fail
with an HTTP status, reset the connection before answering, or drop it after
``drop_after`` bytes of the response. Random draws come from
``random.Random(seed)``, one per matching rule and request, so a run with the
same requests in the same order injects the same faults. Test-control paths
(``/__sim__/``) are never faulted nor counted. With ``"after": true`` a
``status`` or ``reset`` fault is applied after the node has handled the request
(the work is done, the answer is lost), as when a proxy gives up on a slow backend.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

CONTROL_PREFIX = "/__sim__/"
API_PREFIXES = ("/public/api", "/dip/publicapi")
_METHODS = {"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"}
_STATUS_TEXT = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FaultPlanError(ValueError):
    """A fault plan is malformed."""


@dataclass
class FaultRule:
    """One rule of a fault plan."""

    method: str | None = None
    path: re.Pattern[str] | None = None
    rate: float = 1.0
    status: int | None = None
    latency: float = 0.0
    drop_after: int | None = None
    reset: bool = False
    times: int | None = None
    after: bool = False
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether the rule applies to a request (ignoring rate and times)."""
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None

    def describe(self) -> dict[str, Any]:
        """The rule as JSON (with how often it fired)."""
        return {
            "method": self.method,
            "path": self.path.pattern if self.path else None,
            "rate": self.rate,
            "status": self.status,
            "latency": self.latency,
            "drop_after": self.drop_after,
            "reset": self.reset,
            "times": self.times,
            "after": self.after,
            "fired": self.fired,
        }


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise FaultPlanError(f"fault rule field '{name}' must be a number between {lo} and {hi}")
    return float(value)


def parse_rule(raw: Any) -> FaultRule:
    """Validate one rule."""
    if not isinstance(raw, dict):
        raise FaultPlanError("each fault rule must be an object")
    unknown = set(raw) - {
        "method",
        "path",
        "rate",
        "status",
        "latency",
        "drop_after",
        "reset",
        "times",
        "after",
    }
    if unknown:
        raise FaultPlanError(f"unknown fault rule field '{sorted(unknown)[0]}'")
    rule = FaultRule()
    if raw.get("method") is not None:
        method = str(raw["method"]).upper()
        if method not in _METHODS:
            raise FaultPlanError(f"fault rule method '{method[:10]}' is not an HTTP method")
        rule.method = method
    if raw.get("path") is not None:
        try:
            rule.path = re.compile(str(raw["path"]))
        except re.error as exc:
            raise FaultPlanError(f"fault rule path is not a valid regex: {exc}") from None
    if "rate" in raw:
        rule.rate = _number(raw["rate"], "rate", 0.0, 1.0)
    if raw.get("status") is not None:
        rule.status = int(_number(raw["status"], "status", 400, 599))
    if "latency" in raw:
        rule.latency = _number(raw["latency"], "latency", 0.0, 3600.0)
    if raw.get("drop_after") is not None:
        rule.drop_after = int(_number(raw["drop_after"], "drop_after", 0, 2**62))
    rule.reset = bool(raw.get("reset", False))
    rule.after = bool(raw.get("after", False))
    if raw.get("times") is not None:
        rule.times = int(_number(raw["times"], "times", 0, 2**31))
    return rule


class FaultState:
    """The current fault plan and the request counters of a node."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seed: int | None = None
        self.rules: list[FaultRule] = []
        self._rng = random.Random(0)
        self._stats: Counter[str] = Counter()

    def set_plan(self, plan: Any) -> None:
        """Replace the plan (validated first; the old plan stays on error)."""
        if not isinstance(plan, dict):
            raise FaultPlanError("a fault plan must be an object with 'seed' and 'rules'")
        rules_raw = plan.get("rules", [])
        if not isinstance(rules_raw, list):
            raise FaultPlanError("fault plan 'rules' must be a list")
        seed = plan.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultPlanError("fault plan 'seed' must be an integer")
        rules = [parse_rule(r) for r in rules_raw]
        with self._lock:
            self.seed = seed
            self.rules = rules
            self._rng = random.Random(seed)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self.seed = None
            self.rules = []

    def describe(self) -> dict[str, Any]:
        """The plan as JSON."""
        with self._lock:
            return {"seed": self.seed, "rules": [r.describe() for r in self.rules]}

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first rule that fires for this request, if any."""
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if self._rng.random() < rule.rate:
                    rule.fired += 1
                    return rule
            return None

    def count(self, key: str) -> None:
        """Count one request."""
        with self._lock:
            self._stats[key] += 1

    def stats(self) -> dict[str, Any]:
        """``{"total": n, "routes": {"GET /projects/<projectKey>/": n, ...}}``."""
        with self._lock:
            return {"total": sum(self._stats.values()), "routes": dict(sorted(self._stats.items()))}

    def reset_stats(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._stats.clear()


def _abort_connection(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class FaultMiddleware:
    """Counts requests per route template and applies the fault plan before the app answers."""

    def __init__(self, app: WSGIApp, url_map: Map, state: FaultState) -> None:
        self.app = app
        self.url_map = url_map
        self.state = state

    def template(self, environ: dict[str, Any]) -> str:
        """``"<METHOD> <route template without API prefix>"`` for a request."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            rule, _ = self.url_map.bind_to_environ(environ).match(return_rule=True)
            route = str(rule.rule)
        except HTTPException:
            route = "<unmatched>"
        for prefix in API_PREFIXES:
            if route.startswith(prefix + "/"):
                route = route[len(prefix) :]
                break
        return f"{method} {route}"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PREFIX):
            return self.app(environ, start_response)
        self.state.count(self.template(environ))
        rule = self.state.pick(str(environ.get("REQUEST_METHOD", "GET")).upper(), path)
        if rule is None:
            return self.app(environ, start_response)
        if rule.latency:
            time.sleep(rule.latency)
        if rule.after and (rule.reset or rule.status is not None):
            self._process_and_discard(environ)
        if rule.reset:
            _abort_connection(environ)
            raise ConnectionResetError("fault injection: connection reset")
        if rule.status is not None:
            body = json.dumps(
                {
                    "errorType": "com.dataiku.dip.exceptions.InjectedFaultException",
                    "message": f"Injected fault: HTTP {rule.status}",
                    "detailedMessage": f"Injected fault: HTTP {rule.status}",
                    "code": "ERR_SIM_INJECTED_FAULT",
                }
            ).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            if rule.status in (429, 503):
                headers.append(("Retry-After", "1"))
            start_response(f"{rule.status} {_STATUS_TEXT.get(rule.status, 'Error')}", headers)
            return [body]
        if rule.drop_after is not None:
            return self._truncated(environ, start_response, rule.drop_after)
        return self.app(environ, start_response)

    def _process_and_discard(self, environ: dict[str, Any]) -> None:
        """Let the node handle the request fully, then forget its answer (the fault replaces it)."""

        def ignore_start(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            return lambda data: None

        answer = self.app(environ, ignore_start)
        try:
            for _ in answer:
                pass
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()

    def _truncated(
        self, environ: dict[str, Any], start_response: StartResponse, limit: int
    ) -> Iterator[bytes]:
        inner = self.app(environ, start_response)

        def body() -> Iterator[bytes]:
            sent = 0
            try:
                for chunk in inner:
                    if sent + len(chunk) >= limit:
                        if limit > sent:
                            yield chunk[: limit - sent]
                        break
                    sent += len(chunk)
                    yield chunk
                else:
                    return  # the whole body was shorter than the limit
            finally:
                close = getattr(inner, "close", None)
                if close is not None:
                    close()
            _abort_connection(environ)
            raise ConnectionResetError("fault injection: connection dropped mid-body")

        return body()
