"""What the deploy, gate and rollback commands share: the release session, the lock, results and links."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.commands.result import OUTCOME_BY_CATEGORY, StageResult, exit_code_of
from mlcd.errors import MlcdError
from mlcd.redact import redact
from mlcd.release.ledger import Ledger
from mlcd.release.session import Release
from mlcd.release.target import AutomationNodeTarget, DeploymentTarget

if TYPE_CHECKING:
    from mlcd.commands.context import StageContext
    from mlcd.config import EnvironmentConfig
    from mlcd.release.failure import Settled
    from mlcd.runrecord import RunRecord


def release_for(ctx: StageContext, env: EnvironmentConfig, record: RunRecord | None) -> Release:
    """The release session of ``env``: its automation node as the target, its ledger, the command's lock."""
    project = ctx.config().project
    if env.nodes:  # only the commands of mlcd.stages.fleet know how to act on every node at once
        from mlcd.errors import ConfigError

        raise ConfigError(
            f"mlcd {ctx.command} does not support environment {env.name}, which has several nodes",
            "use deploy, test, smoke, rollback, plan or status on it, or act on one node by hand",
        )
    direct = AutomationNodeTarget(ctx.env_node(env.name), project, env.name)
    target: DeploymentTarget = direct
    if env.deployer is not None:  # through the Project Deployer (scenarios still run on the node)
        from mlcd.release.deployer_target import deployer_target

        target = deployer_target(ctx, env, direct)
    return Release(
        env,
        target,
        Ledger(ctx.audit(), record, env.name),
        ctx.out_dir,
        ctx.progress,
        lambda: env_lock(ctx, project, env),
    )


@contextmanager
def env_lock(ctx: StageContext, project: str, env: EnvironmentConfig) -> Iterator[None]:
    """Hold the environment's deploy lock (waiting up to ``--lock-timeout`` / ``timeouts.lock``)."""
    from mlcd.locking import LockHolder, deploy_lock

    explicit = ctx.options.lock_timeout
    timeout = float(explicit) if explicit is not None else float(env.timeouts.lock)

    def waiting(holder: LockHolder | None, path: Path) -> None:
        who = holder.describe() if holder else "another process"
        ctx.progress(f"waiting up to {timeout:g}s for the deploy lock {path}: held by {who}")

    with deploy_lock(
        project, env.name, timeout, build_url=ctx.build_url, command=ctx.command, on_wait=waiting
    ):
        yield


def error_result(
    ctx: StageContext,
    exc: MlcdError,
    *,
    outcome: str | None = None,
    exit_code: int | None = None,
    bundle_id: str | None = None,
    reports: list[str] | None = None,
    details: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
) -> StageResult:
    """A failed StageResult for ``exc`` (printing its one line), keeping reports, details and links.

    The error's own ``details`` (e.g. ``rolledBackTo``) and ``details["reports"]`` are kept too.
    """
    message = redact(exc.one_line())
    print(f"mlcd {ctx.command}: error: {message}", file=sys.stderr, flush=True)
    own = dict(getattr(exc, "details", None) or {})
    all_reports = list(reports or [])
    all_reports += [str(r) for r in own.pop("reports", []) if str(r) not in all_reports]
    code = exit_code if exit_code is not None else exit_code_of(exc)
    return StageResult(
        outcome=outcome or OUTCOME_BY_CATEGORY.get(exc.category, "FAILED"),
        message=message,
        exit_code=int(code),
        bundle_id=bundle_id,
        reports=all_reports,
        details={**own, **dict(details or {})},
        error_category=exc.category,
        links=dict(links or {}),
    )


def settled_result(
    ctx: StageContext,
    settled: Settled,
    *,
    bundle_id: str | None,
    reports: list[str],
    details: dict[str, Any],
    links: dict[str, str],
) -> StageResult:
    """The StageResult of a failure the release core settled (outcome and exit code from the decision)."""
    d = settled.decision
    err = settled.error()
    return error_result(
        ctx,
        err,
        outcome=d.outcome,
        exit_code=d.exit_code,
        bundle_id=bundle_id,
        reports=reports,
        details={**details, **err.details},
        links=links,
    )


def stage_links(
    ctx: StageContext, env: EnvironmentConfig, project: str, reports: list[str] | None = None
) -> dict[str, str]:
    """Links for a stage file: the project on the node, the HTML/JUnit reports, the audit trail."""
    links = {
        "project": f"{env.node.url.rstrip('/')}/projects/{project}/",
        "auditTrail": str(ctx.out_dir / "audit.jsonl"),
        "runRecord": str(ctx.out_dir / "run.json"),
    }
    for path in reports or []:
        name = Path(path).name
        if name.startswith("smoke-after-rollback"):
            key = "smokeAfterRollbackReport" if name.endswith(".html") else "smokeAfterRollbackJunit"
        else:
            key = "report" if name.endswith(".html") else "junit"
        links.setdefault(key, str(path))
    return links


def deployer_health(rel: Release | None) -> dict[str, Any]:
    """``details``/``reports`` of a stage result with the deployer's health gates ({} if none)."""
    health = getattr(rel.target, "health", None) if rel is not None else None
    if not health:
        return {}
    return {"details": {"deploymentHealth": health}, "reports": [g["report"] for g in health]}
