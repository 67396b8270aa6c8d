"""`deploy`, `test`, `smoke`, `rollback` and `status` of a multi-node environment (``nodes:`` in mlcd.yaml).

Each command builds one release session per node (:func:`members`) and hands
them to :mod:`mlcd.release.fleet`; the stage file is the environment's one
result, with each node's end under ``details.nodes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlcd.commands.options import DeployOptions, GateOptions, RollbackOptions
from mlcd.commands.result import StageResult
from mlcd.errors import MlcdError, NothingToRollBack
from mlcd.release.fleet import FleetOutcome, Member, deploy_fleet, fan_out, gate_fleet, node_environment
from mlcd.release.ledger import Ledger
from mlcd.release.rollback import roll_back, rollback_target
from mlcd.release.session import Release
from mlcd.release.target import AutomationNodeTarget
from mlcd.runrecord import RunRecord
from mlcd.stages.common import env_lock, error_result, stage_links

if TYPE_CHECKING:
    from mlcd.commands.context import StageContext
    from mlcd.config import EnvironmentConfig
    from mlcd.release.archive import BundleInfo


def members(ctx: StageContext, env: EnvironmentConfig, record: RunRecord | None) -> list[Member]:
    """One release session per node: its automation node, its ledger entry and lock ``<env>@<node>``."""
    if record is not None:
        record.env(env.name)
    from mlcd.config import node_for

    project = ctx.config().project
    out: list[Member] = []
    for node in env.nodes:
        sub = node_environment(env, node)
        if record is not None:  # create each node's run.json entry here, before threads read and merge them
            record.env(sub.name)

        def progress(message: str, _name: str = node.name) -> None:
            ctx.progress(f"[{_name}] {message}")

        out.append(
            Member(
                node.name,
                Release(
                    sub,
                    AutomationNodeTarget(node_for(sub.node, name=sub.name), project, sub.name),
                    Ledger(ctx.audit(), record, sub.name),
                    ctx.out_dir,
                    progress,
                    lambda sub=sub: env_lock(ctx, project, sub),  # type: ignore[misc]
                ),
            )
        )
    return out


def _result(
    ctx: StageContext, env: EnvironmentConfig, done: FleetOutcome, bundle_id: str | None
) -> StageResult:
    links = stage_links(ctx, env, ctx.config().project, done.reports)
    if done.exit_code == 0:
        return StageResult(
            outcome="SUCCESS",
            message=done.message,
            bundle_id=bundle_id,
            reports=done.reports,
            details={"nodes": done.nodes},
            links=links,
        )
    return error_result(ctx, done.error(), outcome=done.outcome, bundle_id=bundle_id, links=links)


def deploy(ctx: StageContext) -> StageResult:
    """`mlcd deploy --env E` on every node of E."""
    from mlcd.release.approval import require_approval
    from mlcd.release.archive import archive_path, check_archive, check_project

    cfg, env = ctx.config(), ctx.environment()
    record = RunRecord.load(ctx.out_dir)
    archive = archive_path(record, ctx.opts(DeployOptions).archive)
    bundle = check_archive(record, archive)
    check_project(bundle, cfg.project)
    require_approval(record, env)
    last_gate = not env.tests.enabled and not env.smoke
    ctx.progress(f"deploying bundle {bundle.bundle_id} to the {len(env.nodes)} nodes of {env.name}")
    try:
        done = deploy_fleet(
            Ledger(ctx.audit(), record, env.name),
            members(ctx, env, record),
            bundle,
            archive,
            record.sha256,
            final_record=last_gate and not ctx.options.pipeline,
        )
    except MlcdError as exc:
        return error_result(ctx, exc, bundle_id=record.bundle_id, links=stage_links(ctx, env, cfg.project))
    return _result(ctx, env, done, record.bundle_id)


def gate(
    ctx: StageContext, kind: str, select: Callable[[list[str]], list[str]], *, last_gate: bool
) -> StageResult:
    """`mlcd test|smoke --env E` on every node of E."""
    from mlcd.release.gate import gate_on_active

    env = ctx.environment()
    record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
    allowed = env.rollback_on_failure and not ctx.opts(GateOptions).no_rollback
    done = gate_fleet(
        Ledger(ctx.audit(), record, env.name),
        members(ctx, env, record),
        lambda m: gate_on_active(
            m.rel, record, kind, select, last_gate=last_gate, allowed=allowed, final_record=False
        ),
        kind=kind,
        allowed=allowed,
        final_record=last_gate and not ctx.options.pipeline,
    )
    return _result(ctx, env, done, record.bundle_id if record else None)


def rollback(ctx: StageContext) -> StageResult:
    """`mlcd rollback --env E` on every node of E (each to its own previous bundle, or ``--to``)."""
    from mlcd.stages.rollback import record_rollback

    env = ctx.environment()
    opts = ctx.opts(RollbackOptions)
    reason = opts.reason or "requested"
    record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) or not opts.to else None
    env_ledger = Ledger(ctx.audit(), record, env.name)

    def one(m: Member) -> dict[str, Any]:
        rel = m.rel
        with rel.lock():
            active = rel.target.active_bundle() if rel.target.project_exists() else None
            target = rollback_target(rel.ledger.entry, rel.bundle_id or "", opts.to)
            if target is None:
                raise NothingToRollBack(
                    f"nothing to roll back to on {rel.env.name}; {active or 'no bundle'} stays"
                )
            done = roll_back(rel, target, from_bundle=active, reason=reason, explicit=bool(opts.to))
        ok = record_rollback(rel, done, active=active, reason=reason)
        return {"ok": ok, "to": done.target, "message": done.message, "reports": done.reports}

    ends = fan_out(members(ctx, env, record), one)
    names = [n.name for n in env.nodes]
    nodes: dict[str, dict[str, Any]] = {
        name: (e if isinstance(e, dict) else {"ok": False, "message": str(e)})
        for name, e in zip(names, ends, strict=False)
    }
    needs = sorted(name for name, n in nodes.items() if not n["ok"])
    reports = [str(p) for n in nodes.values() for p in list(n.get("reports") or [])]
    if not needs:
        message = f"rolled back all {len(names)} node(s) of {env.name} (verified)"
        env_ledger.final("FAILED_ROLLED_BACK", bundle_id=env_ledger.bundle_id, active=None, message=message)
        return StageResult(
            outcome="ROLLED_BACK",
            message=message,
            bundle_id=env_ledger.bundle_id,
            reports=reports,
            details={"nodes": nodes},
        )
    message = f"rollback of {env.name} failed on node(s) needing a person: {', '.join(needs)}"
    env_ledger.final("FAILED_NEEDS_ATTENTION", bundle_id=env_ledger.bundle_id, active=None, message=message)
    done = FleetOutcome(
        "FAILED_NEEDS_ATTENTION", 5, message, f"check node(s) {', '.join(needs)}", nodes, needs
    )
    done.reports = reports
    return _result(ctx, env, done, env_ledger.bundle_id)


def status(ctx: StageContext) -> StageResult:
    """`mlcd status --env E`: the active bundle of every node of E (read concurrently)."""
    env = ctx.environment()
    record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
    listed = members(ctx, env, record)
    reads = fan_out(listed, lambda m: m.rel.target.active_bundle() if m.rel.target.project_exists() else None)
    nodes: dict[str, dict[str, Any]] = {}
    for m, r in zip(listed, reads, strict=False):
        nodes[m.node] = (
            {"error": r.one_line() if isinstance(r, MlcdError) else str(r)}
            if isinstance(r, Exception)
            else {"activeBundleId": r, "state": m.rel.ledger.entry.get("state")}
        )
        ctx.progress(f"{m.node}: {nodes[m.node].get('activeBundleId', nodes[m.node].get('error'))}")
    actives = {n.get("activeBundleId") for n in nodes.values() if "error" not in n}
    same = len(actives) == 1 and all("error" not in n for n in nodes.values())
    message = (
        f"all {len(listed)} node(s) of {env.name} have bundle {next(iter(actives))} active"
        if same
        else f"the nodes of {env.name} differ or cannot all be read"
    )
    return StageResult(
        outcome="SUCCESS",
        message=message,
        bundle_id=record.bundle_id if record else None,
        details={"nodes": nodes, "consistent": same},
    )


def plan(ctx: StageContext, record: RunRecord, bundle: BundleInfo) -> StageResult:
    """`mlcd plan --env E`: the deploy plan of every node of E (read concurrently); changes nothing."""
    from mlcd.release.plan import make_plan

    env = ctx.environment()
    listed = members(ctx, env, record)

    def one(m: Member) -> dict[str, Any]:
        t = m.rel.target
        exists = t.project_exists()
        available, unknown = t.connections()
        p = make_plan(
            m.rel.env,
            m.rel.project,
            bundle,
            record.sha256,
            project_exists=exists,
            active_now=t.active_bundle() if exists else None,
            imported_ids=set(t.imported_bundles()) if exists else set(),
            node_connections=available,
            approval_entry=dict(record.env(env.name)),
            connections_unknown=unknown,
            node_remappings=t.remappings() if exists else None,
        )
        for line in p.lines():
            m.rel.progress(line)
        return p.to_dict()

    plans = fan_out(listed, one)
    errors = [(m, r) for m, r in zip(listed, plans, strict=True) if isinstance(r, Exception)]
    if errors:
        raise errors[0][1]
    nodes = {m.node: p for m, p in zip(listed, plans, strict=True)}
    return StageResult(
        outcome="SUCCESS",
        message=f"plan for the {len(listed)} node(s) of {env.name}: nothing was changed",
        bundle_id=bundle.bundle_id,
        details={"nodes": nodes},
        links=stage_links(ctx, env, ctx.config().project),
    )
