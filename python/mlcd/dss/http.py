"""One DSS node's HTTP session: auth, TLS, timeouts, retries, bounds and error mapping.

Every request goes to ``<url>/public/api/<path>`` with HTTP Basic auth (the API
key as user, empty password, as the official client does), a connect and a read
timeout, a wall-clock deadline for the whole answer, and TLS verification unless
explicitly turned off. Sessions, the retry policy, the transient statuses and the
body bounds are the shared ones of :mod:`mlcd.transport`. Idempotent calls are
retried (``Retry-After`` honoured on 429); non-idempotent ones are sent once and
the caller checks the node's state before trying again.
"""

from __future__ import annotations

import base64
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import requests
from requests.auth import AuthBase
from urllib3.exceptions import InsecureRequestWarning

from mlcd.dss.errors import DSSError, DSSUnreachable, error_class_for_status
from mlcd.errors import ConfigError
from mlcd.redact import clip, redact, register_secret
from mlcd.transport.bodies import BodyError, DeadlineExceeded, read_capped
from mlcd.transport.limits import Limits
from mlcd.transport.retry import (
    TRANSIENT_STATUSES,
    Clock,
    RetryPolicy,
    Sleep,
    call_with_retries,
    retry_after_seconds,
)
from mlcd.transport.session import Deadline, keep_deadline, make_session, warn_if_insecure

__all__ = ["READ_TIMEOUT_MESSAGE", "Clock", "DSSSession", "RetryPolicy", "Sleep", "fault_reason"]

log = logging.getLogger("mlcd.dss")

API_PREFIX = "/public/api/"
USER_AGENT = "mlcd-dss-client"
MESSAGE_CHARS = 300  # an error body is shown up to this many characters, after redaction

T = TypeVar("T")


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
        message = clip(str(body.get("detailedMessage") or body.get("message") or ""), 2 * MESSAGE_CHARS)
    if not message:
        text = ""
        try:
            text = resp.text
        except (ValueError, requests.RequestException):  # pragma: no cover - undecodable body
            text = ""
        text = " ".join(text.split())
        if "<" in text and ">" in text:  # an HTML error page from a proxy: keep it short
            text = ""
        message = clip(text, MESSAGE_CHARS) or clip(resp.reason or "", MESSAGE_CHARS)
    retry_after = retry_after_seconds(resp.headers.get("Retry-After")) if status == 429 else None
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
    warning). ``sleep`` and ``clock`` are injectable so tests do not wait;
    ``limits`` default to :meth:`Limits.from_env`.
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
        limits: Limits | None = None,
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
        warn_if_insecure(self.url, f"DSS node {name}")
        self.verify = verify
        self.limits = limits or Limits.from_env()
        self._session = make_session(
            verify=verify, auth=_KeyAuth(api_key), user_agent=USER_AGENT, session=session
        )

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
        """Send one request, once; raise a typed :class:`DSSError` on failure.

        The answer must be complete within ``limits.request_deadline_s`` (a streamed
        one keeps its deadline armed for :func:`mlcd.dss.transfer.receive_to_file`),
        and a body that is read here may be at most ``limits.max_json_bytes``.
        """
        url = self.api_url(path)
        timeout = (self.connect_timeout, self.read_timeout if read_timeout is None else read_timeout)
        log.debug("DSS %s %s %s (%s)", self.name, method, path, operation)
        deadline = Deadline(self.limits.request_deadline_s)
        try:
            resp = self._request(method, url, operation, deadline, params=params, json=json, data=data,
                                 headers=dict(headers) if headers else None, timeout=timeout)  # fmt: skip
            if resp.status_code >= 400 or not stream:
                self._read_body(resp, operation, deadline)
            if resp.status_code >= 400:
                log.debug("DSS %s %s %s -> %s", self.name, method, path, resp.status_code)
                raise error_from_response(resp, self.name, operation)
        except BaseException:
            deadline.close()
            raise
        if stream:
            keep_deadline(resp, deadline)
        else:
            deadline.close()
        return resp

    def _request(
        self, method: str, url: str, operation: str, deadline: Deadline, **kw: Any
    ) -> requests.Response:
        try:
            with warnings.catch_warnings(), deadline:
                if self.verify is False:  # already said once, in __init__; not once per request
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                # verify per request: else REQUESTS_CA_BUNDLE would override a CA path
                return self._session.request(method, url, stream=True, verify=self.verify, **kw)
        except requests.RequestException as exc:
            if deadline.expired:
                raise self._deadline_error(operation) from None
            raise error_from_exception(exc, self.name, operation) from None

    def _read_body(self, resp: requests.Response, operation: str, deadline: Deadline) -> None:
        """Read the body now, within the JSON size cap and the deadline (the response keeps it)."""
        try:
            body = read_capped(resp, self.limits.max_json_bytes, deadline)
        except DeadlineExceeded:
            raise self._deadline_error(operation) from None
        except BodyError as exc:
            raise DSSUnreachable(
                None, None, None, f"refused the answer: {exc.message}", self.name, operation,
                hint=_BODY_HINT,
            ) from None  # fmt: skip
        except requests.RequestException as exc:
            raise error_from_exception(exc, self.name, operation) from None
        resp._content = body  # requests' own cache of the body: .json()/.text read it from here

    def _deadline_error(self, operation: str) -> DSSUnreachable:
        return DSSUnreachable(
            None, None, None,
            f"no complete answer within the {self.limits.request_deadline_s:.0f} s deadline",
            self.name, operation, hint=_BODY_HINT,
        )  # fmt: skip

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

        def on_retry(exc: BaseException | None, delay: float, attempt: int) -> None:
            log.warning(
                "%s on %s: %s, retrying in %.1f s (attempt %d/%d)",
                label or operation,
                self.name,
                fault_reason(exc),
                delay,
                attempt,
                self.retry.max_attempts,
            )

        return call_with_retries(
            fn,
            self.retry,
            transient=lambda e: isinstance(e, DSSError) and e.transient,
            retry_after=lambda e: e.retry_after if isinstance(e, DSSError) else None,
            on_retry=on_retry,
            sleep=self.sleep,
            clock=self.clock,
        )


_BODY_HINT = (
    "the node (or a proxy in front of it) sent an answer mlcd does not accept; check the URL in mlcd.yaml, "
    "or raise the limit (docs/security.md, Network inputs) if the answer is genuine"
)
