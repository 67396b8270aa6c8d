"""`mlcd smoke --env E`: run the smoke scenario(s) after a deploy; roll back automatically on failure."""

from __future__ import annotations

from mlcd.commands.context import StageContext
from mlcd.commands.result import StageResult
from mlcd.runrecord import RunRecord
from mlcd.stages.gate import gate_command


def run(ctx: StageContext) -> StageResult:
    """Run the smoke scenarios of ``--env``; on failure roll back (exit 4), else 5, 7 or 3.

    Exit 2 when another bundle than the one this run deployed there is active.
    """
    env = ctx.environment()
    if not env.smoke:
        record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
        return StageResult(
            outcome="NOOP",
            message=f"no smoke scenario configured for {env.name}",
            bundle_id=record.bundle_id if record is not None else None,
        )
    return gate_command(ctx, "smoke", lambda listed: list(env.smoke), last_gate=True)
