"""`mlcd test --env E`: run the test scenarios as a quality gate, with JUnit and HTML reports."""

from __future__ import annotations

from mlcd.deployment import error_after_deploy_result, gate_failure_result
from mlcd.errors import ConfigError, ExitCode, InputError, MlcdError
from mlcd.runrecord import RunRecord
from mlcd.stages.runner import StageContext, StageResult
from mlcd.testing_gate import run_scenarios, write_gate_reports


def run(ctx: StageContext) -> StageResult:
    """Run the selected test scenarios on ``--env``; GateFailed (exit 3) when any does not pass.

    If this run deployed the environment and ``rollback_on_failure`` is on, a
    failed gate rolls it back (verified); the exit code stays 3 (the gate is the
    cause) and the outcome is ROLLED_BACK.
    """
    cfg = ctx.config()
    env = ctx.environment()
    project = cfg.project
    record = RunRecord.load(ctx.out_dir) if RunRecord.exists(ctx.out_dir) else None
    bundle_id = record.bundle_id if record is not None else None
    if not env.tests.enabled:
        return StageResult(outcome="NOOP", message=f"tests are disabled for {env.name}", bundle_id=bundle_id)
    node = ctx.env_node()
    allow_rollback = env.rollback_on_failure and not getattr(ctx.args, "no_rollback", False)
    try:
        listed = [str(s.get("id")) for s in node.list_scenarios(project)]
        ids = env.tests.select(listed, env.smoke)
        if not ids:
            raise ConfigError(
                f"no scenario of project {project} on {env.name} matches the tests selection "
                f"({env.tests.describe()})",
                f"add test scenarios to the project, or set `tests: false` for {env.name} in mlcd.yaml",
            )
        active = node.active_bundle_id(project)
        gate = run_scenarios(
            node, project, env, ids, ctx.audit(), ctx.progress, kind="tests", bundle_id=active
        )
    except (ConfigError, InputError):
        raise
    except MlcdError as exc:
        result = error_after_deploy_result(
            ctx, node, env, project, record, exc, what="tests", allow_rollback=allow_rollback
        )
        if result is None:
            raise
        return result
    properties = {
        "project": project,
        "environment": env.name,
        "bundleId": active or "",
        "warningPolicy": env.warning,
        "node": env.node.url,
    }
    reports = write_gate_reports(ctx.out_dir, env.name, "tests", gate.cases, properties)
    summary = gate.summary()
    details = {"summary": summary, "cases": {c.scenario_id: c.outcome for c in gate.cases}}
    if record is not None:
        record.update_env(env.name, tests={"passed": gate.passed, "summary": summary, "bundleId": active})
    if gate.passed:
        return StageResult(
            outcome="SUCCESS",
            message=f"tests passed on {env.name}: {summary}",
            bundle_id=bundle_id,
            reports=reports,
            details=details,
        )
    return gate_failure_result(
        ctx,
        node,
        env,
        project,
        record,
        f"tests failed on {env.name}: {summary}",
        f"open {reports[1]} (or the Jenkins test view) for the failing step and log",
        reports,
        details,
        allow_rollback=allow_rollback,
        rolled_back_exit=int(ExitCode.GATE_FAILED),
        nothing_exit=int(ExitCode.GATE_FAILED),
    )
