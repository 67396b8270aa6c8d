"""`mlcd test --env E`: run the test scenarios as a quality gate, with JUnit and HTML reports."""

from __future__ import annotations

from mlcd.commands.context import StageContext
from mlcd.commands.result import StageResult
from mlcd.errors import ConfigError
from mlcd.runrecord import RunRecord
from mlcd.stages.gate import gate_command


def run(ctx: StageContext) -> StageResult:
    """Run the selected test scenarios on ``--env``; GateFailed (exit 3) when any does not pass.

    If this run deployed the environment and ``rollback_on_failure`` is on, a
    failed gate rolls it back (verified); the exit code stays 3 (the gate is the
    cause) and the outcome is ROLLED_BACK. Exit 2 when another bundle than the
    one this run deployed there is active.
    """
    cfg = ctx.config()
    env = ctx.environment()
    project = cfg.project
    if not env.tests.enabled:
        record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
        return StageResult(
            outcome="NOOP",
            message=f"tests are disabled for {env.name}",
            bundle_id=record.bundle_id if record is not None else None,
        )

    def select(listed: list[str]) -> list[str]:
        ids = env.tests.select(listed, env.smoke)
        if not ids:
            raise ConfigError(
                f"no scenario of project {project} on {env.name} matches the tests selection "
                f"({env.tests.describe()})",
                f"add test scenarios to the project, or set `tests: false` for {env.name} in mlcd.yaml",
            )
        return ids

    return gate_command(ctx, "tests", select, last_gate=not env.smoke)
