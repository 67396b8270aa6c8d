"""What `mlcd test` and `mlcd smoke` share: run a gate through the release core, turn it into a result.

The rules (which bundle is tested, rollback after a failure, the final audit
record) are in :mod:`mlcd.release.gate`.
"""

from __future__ import annotations

from collections.abc import Callable

from mlcd.commands.context import StageContext
from mlcd.commands.options import GateOptions
from mlcd.commands.result import StageResult
from mlcd.release.gate import gate_on_active
from mlcd.runrecord import RunRecord
from mlcd.stages.common import deployer_health, release_for, settled_result, stage_links


def gate_command(
    ctx: StageContext, kind: str, select: Callable[[list[str]], list[str]], *, last_gate: bool
) -> StageResult:
    """Run the ``kind`` gate (``tests`` | ``smoke``) of ``--env`` and report it.

    ``select(ids on the node)`` returns the scenario ids to run (or raises ConfigError).
    """
    env = ctx.environment()
    if env.nodes:  # a multi-node environment: mlcd.stages.fleet
        from mlcd.stages import fleet

        return fleet.gate(ctx, kind, select, last_gate=last_gate)
    project = ctx.config().project
    record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
    bundle_id = record.bundle_id if record is not None else None
    rel = release_for(ctx, env, record)
    allowed = env.rollback_on_failure and not ctx.opts(GateOptions).no_rollback
    done = gate_on_active(
        rel, record, kind, select, last_gate=last_gate, allowed=allowed, final_record=not ctx.options.pipeline
    )
    links = stage_links(ctx, env, project, done.reports)
    if done.settled is None:
        label = "tests" if kind == "tests" else kind
        return StageResult(
            outcome="SUCCESS",
            message=f"{label} passed on {env.name}: {done.summary}",
            bundle_id=bundle_id,
            reports=done.reports,
            details=done.details,
            links=links,
        )
    health = deployer_health(rel)  # a rollback through the Project Deployer: its health gate
    return settled_result(
        ctx,
        done.settled,
        bundle_id=bundle_id,
        reports=done.reports + health.get("reports", []),
        details={**done.details, **health.get("details", {})},
        links=links,
    )
