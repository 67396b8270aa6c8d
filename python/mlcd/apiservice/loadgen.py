"""The load gate: warm-up, then fixed concurrency for a time or a request count; latency in an HDR histogram.

Closed loop: each of ``concurrency`` threads, with its own light HTTP client
(:mod:`mlcd.transport.quickpost`, so its own connections), sends the next request
as soon as the previous answer is read, in turn to every API node URL. A request's
latency runs from just before it is sent to the end of reading its answer
(``time.perf_counter_ns``); it is recorded in microseconds in the thread's own
:class:`hdrh.histogram.HdrHistogram` (three significant digits), merged at the end.
Warm-up requests are not recorded. Errors (no answer, HTTP >= 400, malformed
answers) count in the error rate and are not in the latency histogram. Memory does
not grow with the request count: one histogram per thread and one counter row per
second. A closed loop under-reports latency when the service stalls (coordinated
omission); the report says so.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from mlcd.apiservice.config import LoadGate
from mlcd.apiservice.prediction import MAX_ANSWER_BYTES, predict_quick
from mlcd.transport.quickpost import QuickPoster

LOWEST_US, HIGHEST_US, DIGITS = 1, 600_000_000, 3


def new_histogram() -> HdrHistogram:
    """A histogram of latencies in microseconds, 1 us to 10 min, three significant digits."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


@dataclass
class LoadResult:
    """The numbers of one load run and the gate's verdict (``problems`` empty: passed)."""

    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0
    cpu_s: float = 0.0
    histogram: HdrHistogram = field(default_factory=new_histogram)
    timeline: list[dict[str, Any]] = field(
        default_factory=list
    )  # per second: t, count, errors, maxMs, meanMs
    error_samples: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No problem."""
        return not self.problems

    @property
    def rps(self) -> float:
        """Answered requests (errors included) per second of the measured phase."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """Errors over requests."""
        return self.errors / self.requests if self.requests else 0.0

    def percentile_ms(self, p: float) -> float:
        """The ``p``-th percentile latency of the successful requests, in milliseconds."""
        return float(self.histogram.get_value_at_percentile(p)) / 1000.0

    def numbers(self) -> dict[str, Any]:
        """For the stage file (the histogram HDR-encoded, base64)."""
        return {
            "requests": self.requests, "errors": self.errors, "errorRate": round(self.error_rate, 6),
            "durationS": round(self.duration_s, 3), "rps": round(self.rps, 2), "cpuS": round(self.cpu_s, 3),
            "p50Ms": self.percentile_ms(50), "p95Ms": self.percentile_ms(95), "p99Ms": self.percentile_ms(99),
            "maxMs": float(self.histogram.get_max_value()) / 1000.0,
            "histogram": self.histogram.encode().decode("ascii") if self.requests > self.errors else None,
            "timeline": self.timeline, "errorSamples": self.error_samples, "problems": self.problems,
            "passed": self.passed,
        }  # fmt: skip

    def summary(self) -> str:
        """One sentence."""
        head = (f"{self.requests} requests in {self.duration_s:.1f}s: {self.rps:.1f} req/s, "
                f"p50 {self.percentile_ms(50):.1f} ms, p95 {self.percentile_ms(95):.1f} ms, "
                f"p99 {self.percentile_ms(99):.1f} ms, errors {self.error_rate:.2%}")  # fmt: skip
        return head if self.passed else f"{head}: " + "; ".join(self.problems)


class _Worker(threading.Thread):
    """One closed-loop client."""

    def __init__(self, run: _Run, index: int) -> None:
        super().__init__(name=f"mlcd-load-{index}", daemon=True)
        self.run_ = run
        self.index = index
        self.histogram = new_histogram()
        self.seconds: dict[int, list[int]] = {}  # second -> [count, errors, max latency ns, sum ns]
        self.errors: list[str] = []

    def run(self) -> None:
        r = self.run_
        posters = {
            url: QuickPoster(url, api_key=r.api_key, verify=r.verify, timeout=r.timeout[1],
                             max_bytes=MAX_ANSWER_BYTES)
            for url in r.urls
        }  # fmt: skip
        paths = {url: urlsplit(url).path for url in r.urls}
        try:
            for n in itertools.count(self.index):
                if not r.take():
                    return
                url = r.urls[n % len(r.urls)]
                answer = predict_quick(posters[url], paths[url], r.bodies[n % len(r.bodies)])
                if r.recording:
                    self._record(answer.ok, answer.latency_ns, answer.problem)
        finally:
            for poster in posters.values():
                poster.close()

    def _record(self, ok: bool, latency_ns: int, problem: str | None) -> None:
        row = self.seconds.setdefault(int(time.monotonic() - self.run_.started), [0, 0, 0, 0])
        row[0] += 1
        row[2] = max(row[2], latency_ns)
        row[3] += latency_ns
        if ok:
            self.histogram.record_value(min(HIGHEST_US, max(LOWEST_US, latency_ns // 1000)))
        else:
            row[1] += 1
            if len(self.errors) < 5 and problem:
                self.errors.append(problem)


class _Run:
    """One phase: how many requests (or until when) and what to send."""

    def __init__(self, urls: list[str], bodies: list[bytes], api_key: str | None,
                 timeout: tuple[float, float], verify: bool | str) -> None:  # fmt: skip
        self.urls, self.bodies, self.api_key, self.timeout, self.verify = (
            urls,
            bodies,
            api_key,
            timeout,
            verify,
        )
        self.recording = False
        self.started = time.monotonic()
        self._left: int | None = None
        self._until: float | None = None
        self._lock = threading.Lock()

    def phase(self, *, count: int | None = None, seconds: float | None = None, recording: bool) -> None:
        """Set the next phase's budget."""
        self._left = count
        self._until = time.monotonic() + seconds if seconds is not None else None
        self.recording = recording
        self.started = time.monotonic()

    def take(self) -> bool:
        """Whether a worker may send one more request."""
        if self._until is not None:
            return time.monotonic() < self._until
        with self._lock:
            if not self._left:
                return False
            self._left -= 1
            return True


def _pool(run: _Run, concurrency: int) -> list[_Worker]:
    workers = [_Worker(run, i) for i in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return workers


def run_load(
    gate: LoadGate,
    bodies: list[bytes],
    urls: list[str],
    api_key: str | None,
    timeout: tuple[float, float],
    verify: bool | str = True,
) -> LoadResult:
    """Warm up, measure, and judge against the gate's limits."""
    run = _Run(urls, bodies, api_key, timeout, verify)
    if gate.warmup_requests:
        run.phase(count=gate.warmup_requests, recording=False)
        _pool(run, gate.concurrency)
    run.phase(count=gate.requests, seconds=gate.duration_s, recording=True)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    workers = _pool(run, gate.concurrency)
    result = LoadResult(duration_s=time.perf_counter() - t0, cpu_s=time.process_time() - cpu0)
    seconds: dict[int, list[int]] = {}
    for w in workers:
        result.histogram.add(w.histogram)
        result.error_samples.extend(w.errors)
        for sec, (count, errs, mx, total) in w.seconds.items():
            row = seconds.setdefault(sec, [0, 0, 0, 0])
            row[0], row[1], row[2], row[3] = row[0] + count, row[1] + errs, max(row[2], mx), row[3] + total
    result.requests = sum(r[0] for r in seconds.values())
    result.errors = sum(r[1] for r in seconds.values())
    result.error_samples = result.error_samples[:5]
    result.timeline = [
        {"t": s, "count": c, "errors": e, "maxMs": m / 1e6, "meanMs": total / c / 1e6 if c else 0.0}
        for s, (c, e, m, total) in sorted(seconds.items())
    ]
    result.problems = judge(gate, result)
    return result


def judge(gate: LoadGate, result: LoadResult) -> list[str]:
    """Why the numbers miss the gate's limits ([] when they keep them)."""
    problems = []
    if not result.requests:
        return ["no request was answered"]
    for p, budget in ((50, gate.p50_ms), (95, gate.p95_ms), (99, gate.p99_ms)):
        if budget is not None and result.histogram.get_total_count() and result.percentile_ms(p) > budget:
            problems.append(f"p{p} {result.percentile_ms(p):.1f} ms over the {budget:g} ms budget")
    if gate.min_rps is not None and result.rps < gate.min_rps:
        problems.append(f"{result.rps:.1f} req/s under the {gate.min_rps:g} req/s target")
    if result.error_rate > gate.max_error_rate:
        sample = f" (e.g. {result.error_samples[0]})" if result.error_samples else ""
        problems.append(f"error rate {result.error_rate:.2%} over {gate.max_error_rate:.2%}{sample}")
    return problems
