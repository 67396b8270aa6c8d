"""`NodeBase`: the plumbing every DSS call of :class:`~mlcd.dss.node.DSSNode` shares.

One HTTP session per node, JSON answers, the "send once, then check the node's
state" loop of non-idempotent calls, waiting for DSS's background work, and
reading a 401 on a project the node does not list as a missing project.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import requests

from mlcd.dss.errors import DSSError, DSSNotFound, DSSServerError, DSSUnauthorized, DSSUnreachable
from mlcd.dss.http import Clock, DSSSession, RetryPolicy, Sleep, fault_reason

log = logging.getLogger("mlcd.dss")

T = TypeVar("T")

# how long, after an answer was lost, mlcd waits for DSS's background work (export, activation) to show
BACKGROUND_WAIT_S = 120.0


def q(part: str) -> str:
    """``part`` quoted for a URL path segment."""
    return quote(str(part), safe="")


class NodeBase:
    """The session and plumbing of a client for one DSS node (design or automation).

    ``verify``: ``True``, a CA-bundle path, or ``False`` (warns). Every request has
    a connect and a read timeout. ``sleep``/``clock``/``wall`` are injectable for tests.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        name: str = "design",
        verify: bool | str = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        *,
        preload_timeout: float = 1800.0,
        project_standards_checks: bool = True,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.http = DSSSession(
            url,
            api_key,
            name=name,
            verify=verify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
            sleep=sleep,
            clock=clock,
            session=session,
        )
        self.name = name
        self.url = self.http.url
        self.wall = wall
        self.preload_timeout = preload_timeout
        self.project_standards_checks = project_standards_checks

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={self.url!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()

    @property
    def sleep(self) -> Sleep:
        """The sleep function used between retries and polls."""
        return self.http.sleep

    @property
    def clock(self) -> Clock:
        """The monotonic clock used for deadlines."""
        return self.http.clock

    # -- plumbing ----------------------------------------------------------------------------------
    def _json(self, resp: requests.Response, operation: str) -> Any:
        try:
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                raise DSSServerError(
                    resp.status_code,
                    None,
                    None,
                    "the node answered with something that is not JSON",
                    self.name,
                    operation,
                ) from None
        finally:
            resp.close()

    def _get(self, path: str, operation: str, params: dict[str, Any] | None = None) -> Any:
        with self._missing_project_is_not_found(path, operation):
            return self._json(self.http.call("GET", path, operation=operation, params=params), operation)

    @contextlib.contextmanager
    def _missing_project_is_not_found(self, path: str, operation: str) -> Iterator[None]:
        """A 401 on ``projects/<key>/...`` for a key the node does not list is a missing project (404).

        Real DSS answers an unknown project with 401 "Failed to read project permissions".
        """
        try:
            yield
        except DSSUnauthorized as exc:
            parts = path.split("/")
            if len(parts) < 2 or parts[0] != "projects" or not parts[1]:
                raise
            key = unquote(parts[1])
            try:
                listed = key in self.list_project_keys()
            except DSSError:
                raise exc from None
            if listed:
                raise
            raise DSSNotFound(
                404, exc.error_type, exc.code, f"project {key} does not exist on the node (or the key may "
                f"not read it; DSS answered HTTP 401: {exc.dss_message})", self.name, operation,
            ) from None

    def _list(self, payload: Any, key: str) -> list[dict[str, Any]]:
        if isinstance(payload, dict):
            payload = payload.get(key, [])
        return [x for x in (payload or []) if isinstance(x, dict)]

    def _once_then_check(
        self,
        operation: str,
        send: Callable[[], T],
        check: Callable[[], T | None],
    ) -> T:
        """Send a non-idempotent call; on a transient fault read the node's state, then continue or retry."""
        policy = self.http.retry
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return send()
            except DSSError as exc:
                if not exc.transient:
                    raise
                last = exc
            log.warning(
                "%s on %s: %s; checking the node's state before trying again (attempt %d/%d)",
                operation,
                self.name,
                fault_reason(last),
                attempt,
                policy.max_attempts,
            )
            done = self._check_state(operation, last, check)
            if done is not None:
                return done
            if attempt >= policy.max_attempts or self.clock() - started >= policy.max_total_s:
                raise last
            delay = max(policy.backoff(attempt), last.retry_after or 0.0)
            self.sleep(min(delay, max(0.0, policy.max_total_s - (self.clock() - started))))
            # the lost request may still have been in progress on the node: look again before resending
            done = self._check_state(operation, last, check)
            if done is not None:
                return done

    def _check_state(self, operation: str, last: DSSError, check: Callable[[], T | None]) -> T | None:
        try:
            done = check()
        except DSSError as check_exc:
            raise DSSUnreachable(
                None,
                None,
                None,
                f"{last.dss_message or 'transient fault'}; the node's state could not be checked "
                f"afterwards ({check_exc.dss_message or type(check_exc).__name__}), so it is unknown "
                "whether the step took effect",
                self.name,
                operation,
                hint="look at the node (mlcd status) before running again",
            ) from None
        if done is not None:
            log.info("DSS %s: %s had taken effect despite the fault", self.name, operation)
        return done

    def _wait_background(
        self,
        op: str,
        look: Callable[[], dict[str, Any] | None],
        in_progress: Callable[[dict[str, Any]], bool],
        done: dict[str, Any],
    ) -> dict[str, Any] | None:
        """After a lost answer: ``done`` once ``look()`` finds the object finished, None if it is absent.

        While the object is in progress (DSS's background work), look again every second for up to
        :data:`BACKGROUND_WAIT_S`; then fail rather than conclude from an unfinished object.
        """
        waited = 0.0
        while True:
            found = look()
            if found is None:
                return None
            if not in_progress(found):
                return done
            if waited >= BACKGROUND_WAIT_S:
                raise DSSError(
                    None, None, None, f"DSS was still working on it after {waited:g}s", self.name, op,
                    hint="look at the node (mlcd status), then run the stage again",
                )  # fmt: skip
            log.info("DSS %s: %s is still in progress on the node; waiting", self.name, op)
            self.sleep(1.0)
            waited += 1.0

    def list_projects(self) -> list[dict[str, Any]]:
        """GET /projects/: one dict per project (``projectKey``, ``activeBundleState``...)."""
        return self._list(self._get("projects/", "list projects"), "projects")

    def list_project_keys(self) -> list[str]:
        """Keys of the projects the key may see (GET /projects/)."""
        return [str(p.get("projectKey")) for p in self.list_projects() if p.get("projectKey")]
