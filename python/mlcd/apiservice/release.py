"""Deploying, gating and reverting an API service version, with the release core's rules.

What happens after a failure is :mod:`mlcd.release.decisions`' table (a failed or
unhealthy update is ``Failed.ACTIVATION``; a failed gate is ``Failed.TESTS``; the
revert's outcome is its ``Rollback`` value, the correctness gate re-run on the
previous version playing the part of the smoke check after a rollback); the audit
``deployment`` record is written by :class:`mlcd.release.ledger.Ledger` under the
name ``api:<service>@<env>``. The previous version is recorded before anything
changes (the ledger's ``record_previous``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from mlcd.apiservice.config import ApiEnvironment, ApiServiceConfig
from mlcd.apiservice.gates import GateRun, measure_live, probe_nodes, run_gates
from mlcd.apiservice.loadgen import LoadResult
from mlcd.apiservice.requests_file import LabelledRequest
from mlcd.apiservice.target import ApiServiceTarget
from mlcd.errors import ConfigError, MlcdError
from mlcd.release.decisions import Failed, Rollback, after_failure, rolls_back
from mlcd.release.failure import Settled
from mlcd.release.ledger import Ledger
from mlcd.release.target import active_or_none


@dataclass
class ApiRelease:
    """One service on one environment: its target, ledger, requests, API key, progress sink and lock."""

    service: ApiServiceConfig
    env: ApiEnvironment
    target: ApiServiceTarget
    ledger: Ledger
    requests: list[LabelledRequest] | None
    api_key: str | None
    progress: Callable[[str], None]
    lock: Callable[[], AbstractContextManager[object]]
    verify: bool | str = True
    allow_insecure_http: bool = False
    gate_runs: list[GateRun] = field(default_factory=list)
    reverted_to: str | None = None

    def gates(
        self,
        version: str,
        urls: list[str],
        *,
        correctness_only: bool = False,
        baseline: LoadResult | None = None,
    ) -> GateRun:
        """Run the gates on the deployed ``version`` and keep the run for the reports."""
        run = run_gates(self.service, version, self.requests, urls, self.api_key, self.progress,
                        verify=self.verify, correctness_only=correctness_only, baseline=baseline)  # fmt: skip
        self.gate_runs.append(run)
        return run


@dataclass
class Deployed:
    """A successful deploy: the version, the one before, the update's report, whether it was a no-op."""

    version: str
    previous: str | None
    report: dict[str, Any]
    noop: bool = False


def deploy(rel: ApiRelease, version: str, release_notes: str | None) -> Deployed:
    """Publish ``version``, switch the deployment to it, gate it; on failure settle by the table."""
    rel.target.check_infra()
    rel.target.check_service()
    if rel.target.active_bundle() is not None:  # refuses a multi-version mapping before anything changes
        urls = rel.target.status()[2]
        refuse_plain_http(rel, urls)
        probe_nodes(rel.service, rel.requests, urls, rel.api_key, rel.verify)
    if rel.target.publish(version, release_notes):
        rel.progress(f"packaged and published version {version} of API service {rel.service.id}")
    else:
        rel.progress(f"version {version} is already published on the API Deployer")
    with rel.lock():
        previous = rel.target.active_bundle()
        if previous == version:
            health, messages, urls = rel.target.status()
            if health == "HEALTHY":
                rel.ledger.deployed(
                    version, previous=previous, message="already deployed", final=True, noop=True
                )
                return Deployed(
                    version, previous, {"health": health, "messages": messages, "urls": urls}, True
                )
            previous = None  # the version itself is unhealthy: there is nothing known-good to go back to
        live = measure_live(rel.service, rel.requests, rel.target.status()[2], rel.api_key, rel.progress,
                            rel.verify) if previous else None  # fmt: skip
        rel.ledger.deploying(version, "", previous)
        report = _switch(rel, version, previous)
        _gate_new(rel, version, previous, list(report["urls"]), live)
        rel.ledger.final("SUCCEEDED", bundle_id=version, active=version, message="gates passed")
        return Deployed(version, previous, report)


def refuse_plain_http(rel: ApiRelease, urls: list[str]) -> None:
    """ConfigError when an API node URL is plain http:// (the prediction key would travel in clear text)."""
    plain = [u for u in urls if u.lower().startswith("http://")]
    if plain and rel.api_key and not rel.allow_insecure_http:
        raise ConfigError(
            f"API node {plain[0]} of service '{rel.service.id}' is plain http://, "
            "so its API key would travel unencrypted",
            "serve the API nodes over https://, or set allow_insecure_http: true (loopback only)",
        )


def _switch(rel: ApiRelease, version: str, previous: str | None) -> dict[str, Any]:
    """Switch the deployment to ``version`` (HEALTHY), or settle the failed activation and raise."""
    rel.progress(f"switching deployment {rel.env.deployment} from {previous or '(new)'} to {version}")
    try:
        report = rel.target.activate(version)
        refuse_plain_http(rel, list(report["urls"]))
    except (MlcdError, KeyboardInterrupt) as exc:
        cause = exc.one_line() if isinstance(exc, MlcdError) else "interrupted"
        raise settle(rel, Failed.ACTIVATION, version, previous, cause, None).error() from None
    healthy = f"HEALTHY on {len(report['urls'])} API node(s)"
    rel.ledger.deployed(version, previous=previous, message=healthy, final=False)
    return report


def _gate_new(
    rel: ApiRelease, version: str, previous: str | None, urls: list[str], live: LoadResult | None
) -> None:
    """Run the gates on the new version (``live``: the replaced version's load); settle a failure, raise."""
    try:
        run = rel.gates(version, urls, baseline=live)
    except KeyboardInterrupt:  # a stopped gate did not pass: the version is not left unrecorded
        cause = f"interrupted during the gates on {version}"
        raise settle(rel, Failed.TESTS, version, previous, cause, "deploy again").error() from None
    if not run.passed:
        hint = "fix the model or the gate's limits in mlcd.yaml, then deploy a new version"
        raise settle(rel, Failed.TESTS, version, previous, run.failure(), hint).error()


def settle(
    rel: ApiRelease, failed: Failed, version: str, previous: str | None, cause: str, hint: str | None
) -> Settled:
    """Revert when the decision table says so, and record its decision through the ledger."""
    allowed = rel.service.rollback_on_failure
    result, note = Rollback.NOT_TRIED, ""
    if rolls_back(failed, True, allowed):
        result, note = revert_to(rel, previous, reason=cause.split(":")[0], from_version=version)
    decision = after_failure(failed, True, allowed, result)
    message = f"{cause}; {note}" if note else cause
    if decision.kept:
        active: str | None = version
        message += f"; not reverted (rollback_on_failure: false): {version} stays"
    elif result in (Rollback.VERIFIED, Rollback.SMOKE_FAILED):
        active = previous
    else:
        active = active_or_none(rel.target)
    if decision.record is not None:
        rel.ledger.final(decision.record, bundle_id=version, active=active, message=message)
    fix = hint if result is Rollback.VERIFIED else _fix(rel, result, hint)
    return Settled(decision, message, fix, previous if result is Rollback.VERIFIED else None)


def _fix(rel: ApiRelease, result: Rollback, hint: str | None) -> str | None:
    if result is Rollback.NO_TARGET:
        return f"first deployment of '{rel.env.deployment}': fix the version and deploy again, or delete it"
    if result in (Rollback.FAILED, Rollback.SMOKE_FAILED):
        return f"a person must check deployment '{rel.env.deployment}' on the API Deployer"
    return hint


def revert_to(
    rel: ApiRelease, previous: str | None, *, reason: str, from_version: str | None
) -> tuple[Rollback, str]:
    """Switch back to ``previous``, require HEALTHY, re-run the correctness gate; how it went."""
    if previous is None:
        return Rollback.NO_TARGET, "no previous version to revert to (first deployment)"
    rel.progress(f"reverting deployment {rel.env.deployment} to {previous}")
    detail = {"from": from_version, "to": previous, "reason": reason}
    try:
        report = rel.target.activate(previous)
    except MlcdError as exc:
        rel.ledger.audit.record("api_revert", "FAILED", environment=rel.target.name, bundle_id=previous,
                                detail=dict(detail, error=exc.one_line()))  # fmt: skip
        return Rollback.FAILED, f"revert to {previous} failed: {exc.one_line()}"
    check = rel.gates(previous, list(report["urls"]), correctness_only=True)
    verified = check.passed
    rel.ledger.audit.record(
        "api_revert", "VERIFIED" if verified else "CHECK_FAILED", environment=rel.target.name,
        bundle_id=previous, detail=dict(detail, check=check.failure() or "correctness passed"),
    )  # fmt: skip
    rel.reverted_to = previous
    if not verified:
        return Rollback.SMOKE_FAILED, f"reverted to {previous}, HEALTHY, but {check.failure()}"
    checked = "correctness passed" if check.correctness is not None else "no correctness gate configured"
    return Rollback.VERIFIED, f"reverted to {previous} (HEALTHY, {checked})"
