"""One DSS node's HTTP session: auth, TLS, timeouts, retries and error mapping.

Every request goes to ``<url>/public/api/<path>`` with HTTP Basic auth (the API
key as user, empty password, as the official client does), a connect and a read
timeout, and TLS verification unless explicitly turned off. Idempotent calls are
retried with :mod:`tenacity` (exponential backoff with jitter, bounded attempts
and total time, ``Retry-After`` honoured on 429); non-idempotent ones are sent
once and the caller checks the node's state before trying again.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
import tenacity
from requests.auth import AuthBase
from urllib3.exceptions import InsecureRequestWarning

from mlcd.dss.errors import TRANSIENT_STATUSES, DSSError, DSSUnreachable, error_class_for_status
from mlcd.errors import ConfigError
from mlcd.redact import redact, register_secret

log = logging.getLogger("mlcd.dss")

API_PREFIX = "/public/api/"
USER_AGENT = "mlcd-dss-client"

T = TypeVar("T")

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """How transient faults of idempotent calls are retried.

    ``max_attempts`` counts the first try; ``max_total_s`` bounds the time spent
    from the first try to the start of the last one; waits grow from
    ``initial_s`` exponentially with full jitter, capped at ``max_wait_s``.
    """

    max_attempts: int = 5
    max_total_s: float = 60.0
    initial_s: float = 0.5
    max_wait_s: float = 8.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): jittered exponential."""
        ceiling = min(self.max_wait_s, self.initial_s * float(2 ** max(0, attempt - 1)))
        return float(max(self.initial_s / 2, ceiling * rng()))


class _KeyAuth(AuthBase):
    """HTTP Basic with the API key as user and an empty password; never shows the key."""

    def __init__(self, api_key: str) -> None:
        self._header = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._header
        return r

    def __repr__(self) -> str:
        return "<DSS API key auth ***>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _KeyAuth) and other._header == self._header

    def __hash__(self) -> int:
        return hash(self._header)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(resp: requests.Response, node: str, operation: str) -> DSSError:
    """Map an HTTP error answer (JSON DSS error body or not) to a typed :class:`DSSError`."""
    status = resp.status_code
    error_type: str | None = None
    code: str | None = None
    message = ""
    body: Any = None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error_type = _str_or_none(body.get("errorType"))
        code = _str_or_none(body.get("code"))
        message = str(body.get("detailedMessage") or body.get("message") or "")
    if not message:
        text = ""
        try:
            text = resp.text
        except (ValueError, requests.RequestException):  # pragma: no cover - undecodable body
            text = ""
        text = " ".join(text.split())
        if "<" in text and ">" in text:  # an HTML error page from a proxy: keep it short
            text = ""
        message = text[:300] or (resp.reason or "")
    retry_after = _retry_after_seconds(resp.headers.get("Retry-After")) if status == 429 else None
    cls = error_class_for_status(status)
    return cls(
        status,
        error_type,
        code,
        message,
        node,
        operation,
        transient=status in TRANSIENT_STATUSES,
        retry_after=retry_after,
    )


def fault_reason(exc: BaseException | None) -> str:
    """A short reason for a transient fault: the HTTP status, else what went wrong."""
    if isinstance(exc, DSSError):
        if exc.status is not None:
            return str(exc.status)
        return exc.dss_message or type(exc).__name__
    return type(exc).__name__ if exc is not None else "fault"


def _str_or_none(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


READ_TIMEOUT_MESSAGE = "no answer within the read timeout"


def error_from_exception(exc: BaseException, node: str, operation: str) -> DSSError:
    """Map a requests/urllib3 exception (connection, TLS, timeout) to :class:`DSSUnreachable`."""
    if isinstance(exc, requests.exceptions.SSLError):
        return DSSUnreachable(
            None,
            None,
            None,
            "TLS verification failed",
            node,
            operation,
            hint="give the node's CA bundle (tls.ca_bundle in mlcd.yaml) or fix the node's certificate",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        message, transient = "connection timed out", True
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        message, transient = READ_TIMEOUT_MESSAGE, True
    elif isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError):
        message, transient = "connection failed or was reset", True
    else:
        message, transient = f"request failed ({type(exc).__name__})", False
    return DSSUnreachable(None, None, None, message, node, operation, transient=transient)


class DSSSession:
    """The HTTP session of one DSS node.

    ``verify`` is ``True`` (system CAs), a CA-bundle path, or ``False`` (logs a
    warning). ``sleep`` and ``clock`` are injectable so tests do not wait.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        name: str = "dss",
        verify: bool | str = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError(
                f"no API key for DSS node {name}", "set the environment variable named in mlcd.yaml"
            )
        register_secret(api_key)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"DSS node {name} URL {redact(url)!r} is not http(s)", "use http(s)://host:port"
            )
        self.url = url.rstrip("/")
        self.name = name
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        if isinstance(verify, str) and not os.path.isfile(verify):
            raise ConfigError(
                f"CA bundle {verify} for DSS node {name} does not exist", "fix tls.ca_bundle in mlcd.yaml"
            )
        if verify is False:
            log.warning("TLS certificate verification is OFF for DSS node %s (%s)", name, self.url)
        self.verify = verify
        self._session = session or requests.Session()
        self._session.auth = _KeyAuth(api_key)
        self._session.verify = verify
        self._session.headers["User-Agent"] = USER_AGENT

    def __repr__(self) -> str:
        return f"DSSSession(name={self.name!r}, url={self.url!r})"

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts passed to every request."""
        return (self.connect_timeout, self.read_timeout)

    def api_url(self, path: str) -> str:
        """Absolute URL of an API path."""
        return self.url + API_PREFIX + path.lstrip("/")

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # -- one attempt -------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Iterable[bytes] | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
    ) -> requests.Response:
        """Send one request, once; raise a typed :class:`DSSError` on failure."""
        url = self.api_url(path)
        timeout = (self.connect_timeout, self.read_timeout if read_timeout is None else read_timeout)
        log.debug("DSS %s %s %s (%s)", self.name, method, path, operation)
        try:
            with warnings.catch_warnings():
                if self.verify is False:  # already said once, in __init__; not once per request
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                resp = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=dict(headers) if headers else None,
                    stream=stream,
                    timeout=timeout,
                    verify=self.verify,  # per request: else REQUESTS_CA_BUNDLE would override a CA path
                )
        except requests.RequestException as exc:
            raise error_from_exception(exc, self.name, operation) from None
        if resp.status_code >= 400:
            try:
                err = error_from_response(resp, self.name, operation)
            finally:
                resp.close()
            log.debug("DSS %s %s %s -> %s", self.name, method, path, resp.status_code)
            raise err
        return resp

    # -- with retries ------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request, retrying transient faults when ``idempotent``; non-idempotent: once."""
        if not idempotent:
            return self.send(method, path, operation=operation, **kwargs)
        return self.retrying(
            lambda: self.send(method, path, operation=operation, **kwargs),
            operation,
            label=f"{method} /{path.lstrip('/')}",
        )

    def retrying(self, fn: Callable[[], T], operation: str, label: str | None = None) -> T:
        """Run ``fn`` under the retry policy: transient :class:`DSSError` are retried, then re-raised.

        Each retry is logged at WARNING (``label`` names the request, default: the operation).
        """
        policy = self.retry
        started = self.clock()

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            delay = policy.backoff(state.attempt_number)
            if isinstance(exc, DSSError) and exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            remaining = policy.max_total_s - (self.clock() - started)
            return max(0.0, min(delay, remaining))

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts:
                return True
            exc = state.outcome.exception() if state.outcome else None
            elapsed = self.clock() - started
            if isinstance(exc, DSSError) and exc.retry_after is not None:
                return elapsed + exc.retry_after > policy.max_total_s
            return elapsed >= policy.max_total_s

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s on %s: %s, retrying in %.1f s (attempt %d/%d)",
                label or operation,
                self.name,
                fault_reason(exc),
                delay,
                state.attempt_number + 1,
                policy.max_attempts,
            )

        retrying = tenacity.Retrying(
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, DSSError) and e.transient),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)
