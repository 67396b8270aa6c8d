"""The one retry policy of every mlcd HTTP client (DSS nodes and the artifact repository).

Transient faults are the statuses in :data:`TRANSIENT_STATUSES` and broken or
refused connections; the caller says which of its errors are transient. Waits
grow exponentially with full jitter, attempts and total time are bounded, and a
``Retry-After`` the server sent is honoured as long as it fits the total bound.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import tenacity

T = TypeVar("T")

Sleep = Callable[[float], None]
Clock = Callable[[], float]

#: Statuses worth another try: request timeout, rate limit, proxy/gateway faults, unavailable.
TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})


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


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date), None if absent/bad."""
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


OnRetry = Callable[[BaseException | None, float, int], None]


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None] = lambda e: None,
    on_retry: OnRetry | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> T:
    """Run ``fn``; retry while it raises a ``transient`` error and ``policy`` allows; re-raise the last.

    ``on_retry(error, delay, next_attempt)`` is called before each wait.
    """
    started = clock()

    def error(state: tenacity.RetryCallState) -> BaseException | None:
        return state.outcome.exception() if state.outcome else None

    def wait(state: tenacity.RetryCallState) -> float:
        exc = error(state)
        delay = policy.backoff(state.attempt_number)
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:
            delay = max(delay, asked)
        remaining = policy.max_total_s - (clock() - started)
        return max(0.0, min(delay, remaining))

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        exc = error(state)
        elapsed = clock() - started
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:
            return elapsed + asked > policy.max_total_s
        return elapsed >= policy.max_total_s

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            delay = state.next_action.sleep if state.next_action else 0.0
            on_retry(error(state), delay, state.attempt_number + 1)

    retrying = tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(transient),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)
