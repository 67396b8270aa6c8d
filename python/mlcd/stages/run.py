"""`mlcd run`: the whole flow in one process, stage by stage, stopping at the first failure.

validate → bundle → publish (when an artifact repository is configured) → for
each environment in config order (or ``--envs``): approval (when needed) →
deploy → test (when enabled) → smoke (when configured). Each stage is the same
code as its own command and writes its own stage file; ``pipeline.json``
summarises them. The exit code is the first failure's.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from mlcd.deployment import approval_problem, env_lock
from mlcd.errors import ConfigError, ExitCode, LockTimeout, MlcdError
from mlcd.runrecord import RunRecord
from mlcd.stages.runner import StageContext, StageResult, execute, stage_file_name


def _stage_args(ctx: StageContext, command: str, env: str | None, **extra: Any) -> argparse.Namespace:
    from mlcd.cli import build_parser

    argv = [command, "--config", str(ctx.args.config), "--out-dir", str(ctx.out_dir)]
    if ctx.debug:
        argv.append("--debug")
    if env is not None:
        argv += ["--env", env]
    if command == "approve":
        argv += ["--approver", str(extra.pop("approver"))]
    ns = build_parser().parse_args(argv)
    ns.pipeline = True
    for key, value in extra.items():
        setattr(ns, key, value)
    return ns


class _Pipeline:
    """Runs stages and keeps the summary."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.stages: list[dict[str, Any]] = []

    def stage(self, command: str, env: str | None = None, **extra: Any) -> int:
        """Run one stage in-process; print its account; return its exit code."""
        label = f"{command} on {env}" if env else command
        print(f"=== stage {len(self.stages) + 1}: {label} ===", flush=True)
        module = importlib.import_module(f"mlcd.stages.{command}")
        code = execute(command, module, _stage_args(self.ctx, command, env, **extra))
        path = self.ctx.out_dir / stage_file_name(command, env)
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = {"outcome": "FAILED" if code else "SUCCESS", "message": "(no stage file)"}
        entry = {
            "stage": command,
            "environment": env,
            "outcome": result.get("outcome"),
            "exitCode": code,
            "message": result.get("message"),
            "file": str(path),
            "reports": result.get("reports") or [],
            "errorCategory": result.get("errorCategory"),
        }
        rolled = (result.get("details") or {}).get("rolledBackTo")
        if rolled:
            entry["rolledBackTo"] = rolled
        self.stages.append(entry)
        print(f"--- {label}: {entry['outcome']} (exit {code})", flush=True)
        return code

    def refuse(self, command: str, env: str, outcome: str, message: str, code: int) -> int:
        """Record a stage the pipeline itself stopped (e.g. a missing approval)."""
        print(f"=== stage {len(self.stages) + 1}: {command} on {env} ===", flush=True)
        self.stages.append(
            {
                "stage": command,
                "environment": env,
                "outcome": outcome,
                "exitCode": code,
                "message": message,
                "errorCategory": "approval",
            }
        )
        print(f"mlcd run: error: {message}", file=sys.stderr, flush=True)
        print(f"--- {command} on {env}: {outcome} (exit {code})", flush=True)
        return code


def _envs(ctx: StageContext) -> list[str]:
    names = [e.name for e in ctx.config().environments]
    wanted = getattr(ctx.args, "envs", None)
    if not wanted:
        return names
    chosen = [w.strip() for w in str(wanted).split(",") if w.strip()]
    for name in chosen:
        ctx.config().environment(name)  # ConfigError with did-you-mean for unknown names
    return [n for n in names if n in chosen]


def run(ctx: StageContext) -> StageResult:
    """Run the whole flow; return the pipeline's result (exit code = the first failing stage's)."""
    cfg = ctx.config()
    envs = _envs(ctx)
    approve = list(getattr(ctx.args, "approve", None) or [])
    for name in approve:
        if name not in [e.name for e in cfg.environments]:
            cfg.environment(name)
            raise ConfigError(f"--approve {name}: no such environment", "use a name from mlcd.yaml")
    no_rollback = bool(getattr(ctx.args, "no_rollback", False))
    pipe = _Pipeline(ctx)
    bundle_extra = {
        "bundle_id": getattr(ctx.args, "bundle_id", None),
        "build_number": getattr(ctx.args, "build_number", None),
        "build_url": getattr(ctx.args, "build_url", None),
    }
    plan: list[tuple[str, str | None, dict[str, Any]]] = [
        ("validate", None, {}),
        ("bundle", None, bundle_extra),
    ]
    if cfg.artifact_repository is not None:
        plan.append(("publish", None, {}))
    print(f"mlcd run: project {cfg.project}; environments: {', '.join(envs) or 'none'}", flush=True)
    failed = 0
    for command, env_name, extra in plan:
        failed = pipe.stage(command, env_name, **extra)
        if failed:
            break
    deployed: list[str] = []
    if not failed:
        for name in envs:
            failed = _environment(ctx, pipe, name, approve, no_rollback)
            if failed:
                break
            deployed.append(name)
    return _summary(ctx, pipe, envs, deployed, failed)


def _environment(
    ctx: StageContext, pipe: _Pipeline, name: str, approve: list[str], no_rollback: bool
) -> int:
    env = ctx.config().environment(name)
    if env.approval:
        if name in approve:
            code = pipe.stage("approve", name, approver=getattr(ctx.args, "approver", None) or ctx.actor)
            if code:
                return code
        else:
            record = RunRecord.load(ctx.out_dir)
            problem = approval_problem(record.env(name), name, record.sha256)
            if problem:
                _unchanged(ctx, name, f"{problem}: not deployed")
                return pipe.refuse(
                    "approve",
                    name,
                    "FAILED",
                    f"{problem}: stopped before {name}; earlier environments stay deployed "
                    f"(fix: pass --approve {name} or run `mlcd approve --env {name}`)",
                    int(ExitCode.BAD_INPUT),
                )
    try:
        with env_lock(ctx, ctx.config().project, env):  # held through deploy, tests, smoke, rollback
            code = _deploy_and_check(pipe, name, env.tests.enabled, bool(env.smoke), no_rollback)
    except LockTimeout as exc:
        _unchanged(ctx, name, exc.one_line())
        return pipe.refuse("deploy", name, "FAILED", exc.one_line(), int(exc.exit_code))
    if code:
        return code
    record = RunRecord.load(ctx.out_dir)
    ctx.audit().deployment_outcome(
        name,
        "SUCCEEDED",
        bundle_id=record.bundle_id,
        active_bundle_id=record.bundle_id,
        message=f"bundle {record.bundle_id} deployed to {name}, tests and smoke passed",
    )
    return 0


def _unchanged(ctx: StageContext, name: str, message: str) -> None:
    record = RunRecord.load(ctx.out_dir)
    ctx.audit().deployment_outcome(
        name, "FAILED_UNCHANGED", bundle_id=record.bundle_id, active_bundle_id=None, message=message
    )


def _deploy_and_check(pipe: _Pipeline, name: str, tests: bool, smoke: bool, no_rollback: bool) -> int:
    code = pipe.stage("deploy", name)
    if code:
        return code
    if tests:
        code = pipe.stage("test", name, no_rollback=no_rollback)
        if code:
            return code
    if smoke:
        code = pipe.stage("smoke", name, no_rollback=no_rollback)
    return code


def _summary(
    ctx: StageContext, pipe: _Pipeline, envs: list[str], deployed: list[str], failed: int
) -> StageResult:
    bundle_id = None
    if RunRecord.exists(ctx.out_dir):
        try:
            bundle_id = RunRecord.load(ctx.out_dir).bundle_id
        except MlcdError:
            bundle_id = None
    print("=== pipeline summary ===", flush=True)
    for s in pipe.stages:
        where = f" {s['environment']}" if s["environment"] else ""
        print(f"  {s['stage']}{where}: {s['outcome']} (exit {s['exitCode']})", flush=True)
    untouched = [e for e in envs if e not in deployed and not any(s["environment"] == e for s in pipe.stages)]
    details: dict[str, Any] = {
        "stages": pipe.stages, "environmentsDone": deployed, "environmentsUntouched": untouched
    }
    rolled = [s["rolledBackTo"] for s in pipe.stages if s.get("rolledBackTo")]
    if rolled:
        details["rolledBackTo"] = rolled[-1]
    reports = [r for s in pipe.stages for r in s.get("reports", [])]
    links = {"auditTrail": str(ctx.out_dir / "audit.jsonl"), "runRecord": str(ctx.out_dir / "run.json")}
    for env_name in envs:
        env_url = ctx.config().environment(env_name).node.url.rstrip("/")
        links[f"project:{env_name}"] = f"{env_url}/projects/{ctx.config().project}/"
    if not failed:
        return StageResult(
            outcome="SUCCESS",
            message=f"bundle {bundle_id} released to {', '.join(deployed) or 'no environment'}",
            bundle_id=bundle_id,
            reports=reports,
            details=details,
            links=links,
        )
    first = next(s for s in pipe.stages if s["exitCode"])
    where = f" {first['environment']}" if first["environment"] else ""
    headline = f"stage {first['stage']}{where} ended {first['outcome']} (exit {failed})"
    tail = f"; not touched: {', '.join(untouched)}" if untouched else ""
    message = f"{headline}: {first['message']}{tail}"
    print(f"mlcd run: error: {headline}{tail}", file=sys.stderr, flush=True)
    return StageResult(
        outcome=str(first["outcome"] or "FAILED"),
        message=message,
        exit_code=failed,
        bundle_id=bundle_id,
        reports=reports,
        details=details,
        error_category=str(first.get("errorCategory") or first["stage"]),
        links=links,
    )
