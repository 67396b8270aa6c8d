"""Calling an API node's prediction endpoint: one POST, its latency, and what the answer says.

Sessions come from :func:`mlcd.transport.session.make_session` (auth, TLS, no
compression); every answer is bounded in time (connect/read timeouts) and in
size (:data:`MAX_ANSWER_BYTES`, read from the raw stream). The API key goes as
HTTP Basic user with an empty password (DSS API node user docs).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from mlcd.transport.quickpost import PostError, QuickPoster
from mlcd.transport.session import make_session

MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """One prediction call: HTTP status (0: no answer), the ``result`` object, a problem, the latency."""

    status: int
    result: dict[str, Any] | None
    problem: str | None
    latency_ns: int

    @property
    def ok(self) -> bool:
        """A 2xx answer with a well-formed ``result``."""
        return self.problem is None


def prediction_session(api_key: str | None, verify: bool | str = True) -> requests.Session:
    """A session for API node calls (one per worker thread)."""
    return make_session(verify=verify, auth=(api_key, "") if api_key else None, user_agent="mlcd-api")


def predict(session: requests.Session, url: str, body: bytes, timeout: tuple[float, float]) -> Answer:
    """POST ``body`` (JSON bytes) to ``url``; the latency covers sending and reading the whole answer."""
    started = time.perf_counter_ns()
    try:
        resp = session.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout, stream=True
        )
        try:
            raw = resp.raw.read(MAX_ANSWER_BYTES + 1, decode_content=False)
        finally:
            resp.close()
    except requests.RequestException as exc:
        return Answer(0, None, f"no answer ({type(exc).__name__})", time.perf_counter_ns() - started)
    latency = time.perf_counter_ns() - started
    if len(raw) > MAX_ANSWER_BYTES:
        return Answer(resp.status_code, None, f"answer larger than {MAX_ANSWER_BYTES} bytes", latency)
    return _read(resp.status_code, raw, latency)


def predict_quick(poster: QuickPoster, path: str, body: bytes) -> Answer:
    """As :func:`predict`, through the load gate's light client (:mod:`mlcd.transport.quickpost`)."""
    started = time.perf_counter_ns()
    try:
        status, raw = poster.post(path, body)
    except PostError as exc:
        return Answer(0, None, f"no answer ({exc})", time.perf_counter_ns() - started)
    latency = time.perf_counter_ns() - started
    if len(raw) > MAX_ANSWER_BYTES:
        return Answer(status, None, f"answer larger than {MAX_ANSWER_BYTES} bytes", latency)
    return _read(status, raw, latency)


def predict_multi(
    session: requests.Session, url: str, records: list[dict[str, Any]], timeout: tuple[float, float]
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """POST ``{"items": [{"features"}...]}`` to ``.../predict-multi``: (results in order, problem)."""
    try:
        resp = session.post(url, json={"items": records}, timeout=timeout, stream=True)
        try:
            raw = resp.raw.read(MAX_ANSWER_BYTES * 16 + 1, decode_content=False)
        finally:
            resp.close()
    except requests.RequestException as exc:
        return None, f"no answer ({type(exc).__name__})"
    if len(raw) > MAX_ANSWER_BYTES * 16:
        return None, f"answer larger than {MAX_ANSWER_BYTES * 16} bytes"
    answer = _read(resp.status_code, raw, 0, key="results")
    if answer.problem is not None or answer.result is None:
        return None, answer.problem
    results = answer.result.get("results")
    if not isinstance(results, list) or len(results) != len(records):
        return None, f"'results' does not hold one answer per record ({len(records)} sent)"
    return [r if isinstance(r, dict) else {} for r in results], None


def _read(status: int, raw: bytes, latency: int, key: str = "result") -> Answer:
    try:
        obj = json.loads(raw) if raw else None
    except ValueError:
        return Answer(status, None, f"HTTP {status}, not JSON (an HTML page or a proxy?)", latency)
    if status >= 400:
        message = obj.get("message") if isinstance(obj, dict) else None
        return Answer(
            status, None, f"HTTP {status}" + (f": {str(message)[:200]}" if message else ""), latency
        )
    result = obj.get(key) if isinstance(obj, dict) else None
    if key == "results" and isinstance(result, list):
        return Answer(status, {"results": result}, None, latency)
    if not isinstance(result, dict):
        return Answer(
            status, None, f"the answer has no '{key}' {'list' if key == 'results' else 'object'}", latency
        )
    return Answer(status, result, None, latency)
