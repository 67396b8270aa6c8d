"""`mlcd api deploy|gate|revert|status --service S --env E`: a prediction service on the API Deployer.

* ``deploy``: package and publish a version on the design node (``--version``, default
  ``<service>_<utc>_<git sha>_b<build>``), switch the environment's deployment to it,
  update, require HEALTHY, run the gates (correctness, then load); a failure is settled
  by the release core's decision table (revert to the previous version, verified).
* ``gate``: run the gates on the version deployed now; changes nothing (exit 3 on failure).
* ``revert``: switch back to the version before this service's last deploy (or ``--to``),
  require HEALTHY, re-run the correctness gate.
* ``status``: the deployment's version, health, health messages and API node URLs.

Stage file: ``api-<action>-<service>-<env>.json``; JUnit: ``reports/api-<service>-<env>.xml``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlcd.apiservice.config import ApiServiceConfig, load_api_services
from mlcd.apiservice.gates import labelled_requests, probe_nodes, write_gate_junit
from mlcd.apiservice.release import ApiRelease, deploy, refuse_plain_http, revert_to
from mlcd.apiservice.target import ApiServiceTarget
from mlcd.audit import read_audit
from mlcd.commands.context import StageContext
from mlcd.commands.options import ApiOptions
from mlcd.commands.result import StageResult
from mlcd.dss.apideployer import APIDeployerNode
from mlcd.errors import ExitCode, GateFailed, InputError, MlcdError, error_for
from mlcd.inputrules import bundle_id_problem
from mlcd.release.decisions import Rollback
from mlcd.release.ledger import Ledger

DEFAULT_LOCK_TIMEOUT_S = 300.0


def _node(ctx: StageContext) -> tuple[APIDeployerNode, bool | str]:
    from mlcd.config import read_secret
    from mlcd.dss.identity import ensure_dss

    services = load_api_services(ctx.config())
    cfg = services.deployer
    node = APIDeployerNode(
        cfg.url, read_secret(cfg.api_key_env, "API key of the API Deployer's node"), name="apideployer",
        verify=cfg.tls.requests_verify(), connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout,
    )  # fmt: skip
    ensure_dss(node)
    return node, cfg.tls.requests_verify()


def _release(ctx: StageContext, opts: ApiOptions, *, need_requests: bool) -> ApiRelease:
    from mlcd.config import read_secret

    svc = load_api_services(ctx.config()).service(opts.service or "")
    env = svc.environment(ctx.env_name or "")
    requests_ = labelled_requests(svc) if need_requests else None  # checked before anything changes
    api_key = read_secret(svc.api_key_env, f"API key of service {svc.id}") if svc.api_key_env else None
    node, verify = _node(ctx)
    target = ApiServiceTarget(node, svc, env)
    return ApiRelease(
        svc, env, target, Ledger(ctx.audit(), None, target.name), requests_, api_key, ctx.progress,
        lambda: _lock(ctx, svc, env.name), verify=verify,
        allow_insecure_http=ctx.config().allow_insecure_http,
    )  # fmt: skip


@contextmanager
def _lock(ctx: StageContext, svc: ApiServiceConfig, env: str) -> Iterator[None]:
    from mlcd.locking import deploy_lock

    timeout = ctx.options.lock_timeout if ctx.options.lock_timeout is not None else DEFAULT_LOCK_TIMEOUT_S
    with deploy_lock(svc.project, f"api-{svc.id}-{env}", float(timeout), build_url=ctx.build_url,
                     command=ctx.command):  # fmt: skip
        yield


def _version(ctx: StageContext, opts: ApiOptions, svc: ApiServiceConfig) -> str:
    from mlcd.gitinfo import short_sha
    from mlcd.stages.bundle import render_bundle_id

    if opts.version:
        return opts.version
    build = os.environ.get("BUILD_NUMBER") or "local"
    return render_bundle_id(
        "{project}_{utc}_{git_sha}_b{build}",
        svc.id,
        git_sha=short_sha(Path(ctx.options.config).resolve().parent),
        build=build,
    )


def _details(rel: ApiRelease, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "service": rel.service.id,
        "deployment": rel.env.deployment,
        "infra": rel.env.infra,
        "gates": [g.numbers() for g in rel.gate_runs],
    }
    out.update(extra)
    return out


def _reports(ctx: StageContext, rel: ApiRelease) -> list[str]:
    """The JUnit file (the first gate run: the version deployed) and the HTML page of every run."""
    if not rel.gate_runs:
        return []
    from mlcd.reports.api_report import write_api_report

    junit = write_gate_junit(ctx.out_dir, rel.service, rel.env.name, rel.gate_runs[0])
    page = ctx.out_dir / "reports" / f"api-{rel.service.id}-{rel.env.name}.html"
    return [str(write_api_report(page, rel.service.id, rel.env.name, rel.gate_runs)), str(junit)]


def _failed(ctx: StageContext, rel: ApiRelease, exc: MlcdError, **extra: Any) -> StageResult:
    from mlcd.stages.common import error_result

    version = extra.get("version")
    return error_result(
        ctx, exc, bundle_id=version, reports=_reports(ctx, rel), details=_details(rel, **extra)
    )


def run(ctx: StageContext) -> StageResult:
    """Dispatch on the action."""
    opts = ctx.opts(ApiOptions)
    action = {"deploy": _deploy, "gate": _gate, "revert": _revert, "status": _status}[opts.action]
    try:
        return action(ctx, opts)
    finally:  # errors say `mlcd api: error: ...`; the stage file is api-<action>-<service>-<env>.json
        ctx.command = f"api-{opts.action}-{opts.service}"


def _deploy(ctx: StageContext, opts: ApiOptions) -> StageResult:
    rel = _release(ctx, opts, need_requests=True)
    version = _version(ctx, opts, rel.service)
    problem = bundle_id_problem(version)
    if problem:
        raise InputError(f"version id '{version}' {problem}", "pass --version with letters, digits, _ . -")
    try:
        done = deploy(rel, version, release_notes=ctx.build_url)
    except MlcdError as exc:
        return _failed(ctx, rel, exc, version=version, revertedTo=rel.reverted_to)
    health = done.report.get("health")
    message = (
        f"version {version} was already deployed and {health}"
        if done.noop
        else f"version {version} deployed ({health}), gates passed; previous: {done.previous or '(none)'}"
    )
    return StageResult(
        "NOOP" if done.noop else "SUCCESS",
        message,
        bundle_id=version,
        reports=_reports(ctx, rel),
        details=_details(rel, version=version, previous=done.previous, update=done.report),
    )


def _gate(ctx: StageContext, opts: ApiOptions) -> StageResult:
    rel = _release(ctx, opts, need_requests=True)
    version = rel.target.active_bundle()
    if version is None:
        raise InputError(
            f"deployment '{rel.env.deployment}' does not exist yet", "run `mlcd api deploy` first"
        )
    health, messages, urls = rel.target.status()
    refuse_plain_http(rel, urls)
    probe_nodes(rel.service, rel.requests, urls, rel.api_key, rel.verify)
    if health != "HEALTHY":
        exc = GateFailed(f"deployment '{rel.env.deployment}' is {health}", "; ".join(messages) or None)
        return _failed(ctx, rel, exc, version=version)
    run_ = rel.gates(version, urls)
    if not run_.passed:
        return _failed(ctx, rel, GateFailed(run_.failure(), "nothing was changed"), version=version)
    return StageResult(
        "SUCCESS",
        f"gates passed on {version}",
        bundle_id=version,
        reports=_reports(ctx, rel),
        details=_details(rel, version=version),
    )


def previous_of(audit_path: Path, name: str) -> str | None:
    """The version recorded as previous by the last deploy of ``name`` (``api:<service>@<env>``)."""
    last = None
    for rec in read_audit(audit_path):
        if rec.get("operation") == "record_previous" and rec.get("environment") == name:
            last = (rec.get("detail") or {}).get("previousBundleId")
    return str(last) if last else None


def _revert(ctx: StageContext, opts: ApiOptions) -> StageResult:
    rel = _release(ctx, opts, need_requests=True)
    current = rel.target.active_bundle()
    target = opts.to or previous_of(ctx.out_dir / "audit.jsonl", rel.target.name)
    if target is None or target == current:
        raise error_for("NOTHING_TO_ROLL_BACK", ExitCode.NOTHING_TO_ROLL_BACK,
                        f"no version to revert deployment '{rel.env.deployment}' to (active: {current})",
                        "pass --to VERSION")  # fmt: skip
    with rel.lock():
        result, note = revert_to(rel, target, reason=opts.reason or "requested", from_version=current)
    if result is Rollback.VERIFIED:
        rel.ledger.final("FAILED_ROLLED_BACK", bundle_id=current, active=target, message=note)
        return StageResult(
            "ROLLED_BACK",
            note,
            bundle_id=target,
            reports=_reports(ctx, rel),
            details=_details(rel, version=target, revertedFrom=current),
        )
    rel.ledger.final("FAILED_NEEDS_ATTENTION", bundle_id=current, active=None, message=note)
    exc = error_for(
        "ROLLBACK_FAILED",
        ExitCode.ROLLBACK_FAILED,
        note,
        f"a person must check deployment '{rel.env.deployment}' on the API Deployer",
    )
    return _failed(ctx, rel, exc, version=target)


def _status(ctx: StageContext, opts: ApiOptions) -> StageResult:
    rel = _release(ctx, opts, need_requests=False)
    version = rel.target.active_bundle()
    if version is None:
        return StageResult(
            "SUCCESS",
            f"deployment '{rel.env.deployment}' does not exist yet",
            details=_details(rel, version=None),
        )
    health, messages, urls = rel.target.status()
    published = sorted(rel.target.imported_bundles())
    for line in [
        f"version: {version}",
        f"health: {health}",
        *(f"  {m}" for m in messages),
        *(f"url: {u}" for u in urls),
        f"published versions: {', '.join(published)}",
    ]:
        ctx.progress(line)
    return StageResult(
        "SUCCESS",
        f"{rel.service.id} on {rel.env.name}: {version} {health}",
        bundle_id=version,
        details=_details(
            rel, version=version, health=health, healthMessages=messages, urls=urls, published=published
        ),
    )
