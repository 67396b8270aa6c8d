"""The API service's gates, in order: correctness, then load; one JUnit test case each.

The gates query the service's first endpoint on every API node URL the deployment
reports. Load sends the correctness gate's requests (their features), in turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcd.apiservice.config import ApiServiceConfig
from mlcd.apiservice.correctness import CorrectnessResult, run_correctness
from mlcd.apiservice.loadgen import LoadResult, run_load
from mlcd.apiservice.prediction import predict, prediction_session
from mlcd.apiservice.requests_file import LabelledRequest, read_requests
from mlcd.errors import ConfigError, NodeError
from mlcd.reports.junit import write_junit
from mlcd.reports.results import CaseResult


@dataclass
class GateRun:
    """The outcome of the gates on one version."""

    version: str
    correctness: CorrectnessResult | None = None
    load: LoadResult | None = None
    baseline: dict[str, Any] | None = None  # the live version's load numbers (regression gate)

    @property
    def passed(self) -> bool:
        """Every gate that ran passed."""
        return all(g is None or g.passed for g in (self.correctness, self.load))

    def failure(self) -> str:
        """The failing gate's sentence."""
        if self.correctness is not None and not self.correctness.passed:
            return f"correctness gate failed on {self.version}: {self.correctness.summary()}"
        if self.load is not None and not self.load.passed:
            return f"load gate failed on {self.version}: {self.load.summary()}"
        return ""

    def numbers(self) -> dict[str, Any]:
        """For the stage file."""
        return {
            "version": self.version,
            "correctness": self.correctness.numbers() if self.correctness else None,
            "load": self.load.numbers() if self.load else None,
            "baseline": self.baseline,
        }

    def cases(self) -> list[CaseResult]:
        """One JUnit case per gate that ran."""
        out = []
        for name, gate in (("correctness", self.correctness), ("load", self.load)):
            if gate is not None:
                out.append(CaseResult(
                    scenario_id=name, outcome="SUCCESS" if gate.passed else "FAILED", passed=gate.passed,
                    duration_s=gate.duration_s, run_id=self.version,
                    failing_step=None if gate.passed else name,
                    error_type=None, error_message=None if gate.passed else gate.summary(),
                    log_excerpt=gate.summary(),
                ))  # fmt: skip
        return out


def labelled_requests(svc: ApiServiceConfig) -> list[LabelledRequest] | None:
    """The correctness gate's requests, read and checked before anything changes (None: no gates)."""
    if svc.load is not None and svc.correctness is None:
        raise ConfigError(
            f"the load gate of API service '{svc.id}' sends the correctness gate's requests, "
            "and there is none",
            "add gates.correctness with a request file",
        )
    return read_requests(svc.correctness.requests) if svc.correctness is not None else None


def run_gates(
    svc: ApiServiceConfig,
    version: str,
    requests_: list[LabelledRequest] | None,
    urls: list[str],
    api_key: str | None,
    progress: Callable[[str], None],
    *,
    verify: bool | str = True,
    correctness_only: bool = False,
    baseline: LoadResult | None = None,
) -> GateRun:
    """Correctness, then (when it passed) load, compared with ``baseline`` (the live version) when given."""
    run = GateRun(version)
    timeout = (5.0, svc.request_timeout_s)
    endpoint = svc.endpoints[0]
    if svc.correctness is None or requests_ is None:
        return run
    progress(f"correctness gate: {len(requests_)} labelled requests on {len(urls)} API node(s), {endpoint}")
    run.correctness = run_correctness(svc.correctness, requests_, urls, endpoint, api_key, timeout, verify)
    progress(f"correctness: {run.correctness.summary()}")
    if not run.correctness.passed or correctness_only or svc.load is None:
        return run
    load = svc.load
    amount = f"{load.duration_s:g}s" if load.duration_s is not None else f"{load.requests} requests"
    progress(f"load gate: {load.concurrency} concurrent clients for {amount} "
             f"(after {load.warmup_requests} warm-up requests)")  # fmt: skip
    bodies = [json.dumps({"features": r.features}).encode() for r in requests_]
    run.load = run_load(load, bodies, [f"{u}/{endpoint}/predict" for u in urls], api_key, timeout, verify)
    if baseline is not None and load.max_p95_ratio is not None:
        run.baseline = {k: v for k, v in baseline.numbers().items() if k not in ("histogram", "timeline")}
        regression(run.load, baseline, load.max_p95_ratio)
    progress(f"load: {run.load.summary()}")
    return run


def regression(new: LoadResult, live: LoadResult, max_ratio: float) -> None:
    """Add a problem to ``new`` when its p95 is more than ``max_ratio`` times the live version's."""
    before, after = live.percentile_ms(95), new.percentile_ms(95)
    if live.histogram.get_total_count() and before > 0 and after > max_ratio * before:
        new.problems.append(
            f"p95 {after:.1f} ms is {after / before:.2f}x the live version's {before:.1f} ms "
            f"(max {max_ratio:g}x)"
        )


def measure_live(
    svc: ApiServiceConfig,
    requests_: list[LabelledRequest] | None,
    urls: list[str],
    api_key: str | None,
    progress: Callable[[str], None],
    verify: bool | str = True,
) -> LoadResult | None:
    """The same load on the live version, before it is replaced (None without a regression gate)."""
    load = svc.load
    if load is None or load.max_p95_ratio is None or not requests_ or not urls:
        return None
    progress("regression gate: the same load on the live version first")
    bodies = [json.dumps({"features": r.features}).encode() for r in requests_]
    targets = [f"{u}/{svc.endpoints[0]}/predict" for u in urls]
    live = run_load(load, bodies, targets, api_key, (5.0, svc.request_timeout_s), verify)
    progress(f"live version: {live.summary()}")
    return live


def probe_nodes(
    svc: ApiServiceConfig,
    requests_: list[LabelledRequest] | None,
    urls: list[str],
    api_key: str | None,
    verify: bool | str = True,
) -> None:
    """NodeError (exit 6) when an API node does not answer, or answers something other than JSON.

    One prediction per URL (the first labelled request), before anything changes; an
    answer that is JSON (even an error) means the node is there and the gates can judge it.
    """
    if not requests_:
        return
    body = json.dumps({"features": requests_[0].features}).encode()
    session = prediction_session(api_key, verify)
    try:
        for url in urls:
            answer = predict(session, f"{url}/{svc.endpoints[0]}/predict", body, (5.0, svc.request_timeout_s))
            if answer.status == 0 or (answer.problem and "not JSON" in answer.problem):
                raise NodeError(
                    f"API node {url} of service '{svc.id}' cannot be queried: {answer.problem}",
                    "check the API nodes of the infrastructure (and a proxy in front of them)",
                )
    finally:
        session.close()


def write_gate_junit(out_dir: Path, svc: ApiServiceConfig, env: str, run: GateRun) -> Path:
    """``<out>/reports/api-<service>-<env>.xml``."""
    path = out_dir / "reports" / f"api-{svc.id}-{env}.xml"
    return write_junit(
        path, f"mlcd api gates {svc.id} on {env}", f"mlcd.api.{svc.id}.{env}", run.cases(),
        {"service": svc.id, "environment": env, "version": run.version},
    )  # fmt: skip
