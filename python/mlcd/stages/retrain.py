"""`mlcd retrain --env E [--model ID]`: retrain on the environment, keep a new model version only if it wins.

The flow is :mod:`mlcd.training.retrain`; this module checks the configuration,
holds the environment's deploy lock, writes the environment's audit ``deployment``
record through the ledger (the one success indicator) and turns the decision into
the command's result and documented exit code.
"""

from __future__ import annotations

from typing import Any

from mlcd.commands.context import StageContext
from mlcd.commands.options import RetrainOptions
from mlcd.commands.result import StageResult
from mlcd.config import EnvironmentConfig
from mlcd.dss.errors import DSSError, DSSNotFound
from mlcd.dss.node import DSSNode
from mlcd.errors import ConfigError, ExitCode, InputError, error_for
from mlcd.release.ledger import Ledger
from mlcd.stages.common import env_lock, error_result, stage_links
from mlcd.training.champion import ModelGate
from mlcd.training.retrain import Retrain, RetrainOutcome, retrain
from mlcd.training.settings import TrainingConfig

_HINTS = {
    int(ExitCode.GATE_FAILED): "the champion stays active; compare the metrics in the stage file and "
    "retrain on better data, or change the gate in continuous_training",
    int(ExitCode.ROLLED_BACK): "the champion is active again (verified); look at the node's saved model "
    "versions and the retrain scenario's run before retraining",
    int(ExitCode.ROLLBACK_FAILED): "check which version of each saved model is active on the node and "
    "set the right one by hand; the audit trail lists every step",
    int(ExitCode.NOTHING_TO_ROLL_BACK): "the saved model had no active version before: choose one by hand",
    int(ExitCode.DEPLOY_FAILED): "nothing changed; look at the retrain scenario's run on the node",
}


def _gates(ctx: StageContext, training: TrainingConfig) -> tuple[ModelGate, ...]:
    wanted = ctx.opts(RetrainOptions).model
    if wanted is None:
        return training.gates
    gate = training.gate(wanted)
    if gate is None:
        raise ConfigError(
            f"saved model {wanted} has no gate in continuous_training.models of {ctx.options.config}",
            f"use one of: {', '.join(g.saved_model for g in training.gates)}",
        )
    return (gate,)


def _training(ctx: StageContext) -> TrainingConfig:
    training = ctx.config().continuous_training
    if training is None:
        raise ConfigError(
            f"{ctx.options.config} has no continuous_training section",
            "add continuous_training with retrain_scenario and models (docs/configuration.md)",
        )
    return training


def run(ctx: StageContext) -> StageResult:
    """Retrain on ``--env``; exit 0 when every gated model ended verified (promoted or untouched champion)."""
    env = ctx.environment()
    training = _training(ctx)
    gates = _gates(ctx, training)
    project = ctx.config().project
    node = ctx.env_node(env.name)
    ledger = Ledger(ctx.audit(), None, env.name)
    with env_lock(ctx, project, env):
        drift = _drift_check(ctx, node, project, training) if ctx.opts(RetrainOptions).if_drift else None
        if drift is not None and not drift["retrain"]:
            links = stage_links(ctx, env, project)
            return StageResult(outcome="NOOP", message=drift["reason"], details={"drift": drift}, links=links)
        flow = Retrain(node, project, env, training, ctx.audit(), ctx.progress, gates)
        outcome = retrain(flow)
        bundle = _active_bundle(node, project)
        record = outcome.decision.record or "FAILED_UNCHANGED"
        ledger.final(record, bundle_id=bundle, active=bundle, message=f"retrain: {outcome.message}")
    if outcome.error is not None:
        raise outcome.error
    return _result(ctx, env, project, outcome, drift)


def _drift_check(ctx: StageContext, node: DSSNode, project: str, training: TrainingConfig) -> dict[str, Any]:
    """Read the drift metric and decide; audited as ``drift_check`` (RETRAIN or NO_RETRAIN), with why."""
    from mlcd.dss.datasets import last_metric_values
    from mlcd.training.drift import read_drift, should_retrain

    drift = training.drift
    if drift is None:
        raise ConfigError(
            f"--if-drift needs continuous_training.drift in {ctx.options.config}",
            "add drift: {dataset: NAME, metric: METRIC_ID, threshold: NUMBER}, or retrain without --if-drift",
        )
    where = f"in project {project} on {ctx.env_name}"
    try:
        computed = last_metric_values(node, project, drift.dataset)
    except DSSNotFound:
        raise InputError(
            f"dataset {drift.dataset} does not exist {where}", "set continuous_training.drift.dataset"
        ) from None
    value = read_drift(computed, drift, where)
    go, reason = should_retrain(value, drift.threshold)
    detail = {"dataset": drift.dataset, "metric": drift.metric, "value": value, "threshold": drift.threshold}
    ctx.audit().record("drift_check", "RETRAIN" if go else "NO_RETRAIN", node=ctx.env_name,
                       environment=ctx.env_name, detail={**detail, "reason": reason})  # fmt: skip
    ctx.progress(reason)
    return {**detail, "retrain": go, "reason": reason}


def _active_bundle(node: DSSNode, project: str) -> str | None:
    try:
        return node.active_bundle_id(project)
    except DSSError:
        return None


def _result(
    ctx: StageContext,
    env: EnvironmentConfig,
    project: str,
    outcome: RetrainOutcome,
    drift: dict[str, Any] | None,
) -> StageResult:
    from mlcd.reports.model_report import write_model_reports

    smoke = [{"scenario": c.scenario_id, "outcome": c.outcome, "runId": c.run_id} for c in outcome.smoke]
    details = {"models": [m.as_dict() for m in outcome.models], "scenario": outcome.scenario, "smoke": smoke}
    if drift is not None:
        details["drift"] = drift
    d = outcome.decision
    folder = ctx.out_dir / "reports" / env.name
    reports = write_model_reports(folder, env.name, details, d.outcome, outcome.message, outcome.smoke)
    links = stage_links(ctx, env, project, reports)
    if d.exit_code == int(ExitCode.OK):
        return StageResult(
            outcome="SUCCESS", message=outcome.message, details=details, links=links, reports=reports
        )
    code = ExitCode(d.exit_code if d.exit_code is not None else int(ExitCode.ROLLBACK_FAILED))
    err = error_for(d.outcome, code, outcome.message, _HINTS.get(int(code)))
    return error_result(
        ctx, err, outcome=d.outcome, exit_code=int(code), details=details, links=links, reports=reports
    )
