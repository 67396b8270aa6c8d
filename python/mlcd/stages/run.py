"""`mlcd run`: the whole flow in one process, stage by stage, stopping at the first failure.

validate → bundle → publish (when an artifact repository is configured) → for
each environment in config order (or ``--envs``): approval (when needed) →
deploy → test (when enabled) → smoke (when configured). Each stage is the same
code as its own command and writes its own stage file; ``pipeline.json``
summarises them. The exit code is the first failure's.

When an environment fails, the environments before it are unwound newest first
by the same decision and code as `mlcd unwind` (``on_failure.earlier_environments``,
default ``rollback``); the final report names each environment's end state.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from mlcd.commands.options import Options, RunOptions, options_for
from mlcd.commands.runner import StageContext, StageResult, execute, stage_file_name
from mlcd.config import MlcdConfig
from mlcd.errors import ConfigError, ExitCode, LockTimeout, MlcdError
from mlcd.release.approval import approval_problem
from mlcd.release.decisions import STATE_NEEDS_ATTENTION, run_exit_code
from mlcd.release.ledger import Ledger
from mlcd.runrecord import RunRecord
from mlcd.stages.common import env_lock
from mlcd.stages.deploy import unchanged


def _stage_args(ctx: StageContext, command: str, env: str | None, **extra: Any) -> Options:
    """The options of one stage run in-process: this run's config, out dir and debug, plus ``extra``."""
    return options_for(
        command, config=ctx.options.config, out_dir=str(ctx.out_dir), debug=ctx.debug, env=env, pipeline=True,
        **{k: v for k, v in extra.items() if v is not None},
    )


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
    wanted = ctx.opts(RunOptions).envs
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
    opts = ctx.opts(RunOptions)
    approve = list(opts.approve)
    _check_run_options(cfg, envs, approve)
    no_rollback = opts.no_rollback
    pipe = _Pipeline(ctx)
    failed = _release(pipe, cfg, opts, envs)
    deployed: list[str] = []
    if not failed:
        failed = _deploy_environments(ctx, pipe, envs, approve, no_rollback, deployed)
    return _summary(ctx, pipe, envs, deployed, failed)


def _check_run_options(cfg: MlcdConfig, envs: list[str], approve: list[str]) -> None:
    """ConfigError for an --approve naming no environment, or an environment with several nodes."""
    for name in approve:
        if name not in [e.name for e in cfg.environments]:
            cfg.environment(name)
            raise ConfigError(f"--approve {name}: no such environment", "use a name from mlcd.yaml")
    fleets = [e.name for e in cfg.environments if e.name in envs and e.nodes]
    if fleets:  # not yet: run's own unwind and records act on one node per environment
        raise ConfigError(
            f"mlcd run does not support environment(s) with several nodes yet: {', '.join(fleets)}",
            "run deploy, test and smoke on them as separate commands (as the Jenkins steps do)",
        )


def _release(pipe: _Pipeline, cfg: MlcdConfig, opts: RunOptions, envs: list[str]) -> int:
    """The stages before any environment: validate, bundle, publish (if a repository is set)."""
    bundle_extra = {
        "bundle_id": opts.bundle_id,
        "build_number": opts.build_number,
        "build_url": opts.build_url,
    }
    release_stages: list[tuple[str, str | None, dict[str, Any]]] = [
        ("validate", None, {}),
        ("bundle", None, bundle_extra),
    ]
    if cfg.artifact_repository is not None:
        release_stages.append(("publish", None, {}))
    print(f"mlcd run: project {cfg.project}; environments: {', '.join(envs) or 'none'}", flush=True)
    failed = 0
    for command, env_name, extra in release_stages:
        failed = pipe.stage(command, env_name, **extra)
        if failed:
            break
    return failed


def _deploy_environments(
    ctx: StageContext,
    pipe: _Pipeline,
    envs: list[str],
    approve: list[str],
    no_rollback: bool,
    deployed: list[str],
) -> int:
    """Each environment in order (appending to ``deployed``); the first failure unwinds the earlier ones."""
    for name in envs:
        failed = _environment(ctx, pipe, name, approve, no_rollback)
        if failed:
            if pipe.stages[-1]["stage"] != "approve":  # a missing approval stops, it does not fail
                unwound = _unwind(ctx, pipe, deployed, f"{name} failed (exit {failed})", no_rollback)
                failed = run_exit_code(failed, unwound)
            return failed
        deployed.append(name)
    return 0


def _unwind(
    ctx: StageContext, pipe: _Pipeline, deployed: list[str], reason: str, no_rollback: bool
) -> list[int]:
    """Unwind the environments this run deployed before the failing one, newest first (as `mlcd unwind`).

    ``--no-rollback`` keeps them (the policy ``keep``), each one's end still recorded. Returns
    each unwind's exit code; an environment whose unwind failed before recording its end
    (e.g. its node could not be reached) is recorded as needing attention here.
    """
    codes = []
    for name in reversed(deployed):
        code = pipe.stage("unwind", name, reason=reason, policy="keep" if no_rollback else None)
        codes.append(code)
        record = RunRecord.load(ctx.out_dir)
        entry = record.env(name)
        if code and entry.get("state") != STATE_NEEDS_ATTENTION:
            Ledger(ctx.audit(), record, name).final(
                "FAILED_NEEDS_ATTENTION",
                bundle_id=record.bundle_id,
                active=entry.get("activeBundleId"),
                message=f"{reason}; unwinding {name} failed (exit {code}): its active bundle is not verified",
            )
    return codes


def _environment(ctx: StageContext, pipe: _Pipeline, name: str, approve: list[str], no_rollback: bool) -> int:
    env = ctx.config().environment(name)
    if env.approval:
        if name in approve:
            code = pipe.stage("approve", name, approver=ctx.opts(RunOptions).approver or ctx.actor)
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
                    f"{problem}: stopped before {name}; earlier environments keep this run's bundle "
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
    Ledger(ctx.audit(), record, name).final(
        "SUCCEEDED",
        bundle_id=record.bundle_id,
        active=record.bundle_id,
        message=f"bundle {record.bundle_id} deployed to {name}, tests and smoke passed",
    )
    return 0


def _unchanged(ctx: StageContext, name: str, message: str) -> None:
    unchanged(ctx, RunRecord.load(ctx.out_dir), name, message, read_node=True)


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
    record = _record_or_none(ctx)
    bundle_id = record.bundle_id if record is not None else None
    states = end_states(record, envs)
    _print_summary(pipe, states)
    details = _details(pipe, envs, deployed, states)
    untouched: list[str] = details["environmentsUntouched"]
    reports = [r for s in pipe.stages for r in s.get("reports", [])]
    ends = "; end states: " + ", ".join(f"{n} {st['state']}" for n, st in states.items()) if envs else ""
    common: dict[str, Any] = {
        "bundle_id": bundle_id,
        "reports": reports,
        "details": details,
        "links": _links(ctx, envs),
    }
    if not failed:
        released = ", ".join(deployed) or "no environment"
        return StageResult(
            outcome="SUCCESS", message=f"bundle {bundle_id} released to {released}{ends}", **common
        )
    return _failed_result(pipe, failed, untouched, ends, common)


def _failed_result(
    pipe: _Pipeline, failed: int, untouched: list[str], ends: str, common: dict[str, Any]
) -> StageResult:
    """The run's result after a failure: the first failing stage, what was not touched, what is stuck."""
    first = next(s for s in pipe.stages if s["exitCode"])
    where = f" {first['environment']}" if first["environment"] else ""
    headline = f"stage {first['stage']}{where} ended {first['outcome']} (exit {first['exitCode']})"
    tail = f"; not touched: {', '.join(untouched)}" if untouched else ""
    stuck = [s["environment"] for s in pipe.stages if s["stage"] == "unwind" and s["exitCode"]]
    if stuck:
        tail += f"; unwinding failed: a person must act on {', '.join(stuck)} (exit {failed})"
    print(f"mlcd run: error: {headline}{tail}{ends}", file=sys.stderr, flush=True)
    return StageResult(
        outcome="ROLLBACK_FAILED" if stuck else str(first["outcome"] or "FAILED"),
        message=f"{headline}: {first['message']}{tail}{ends}",
        exit_code=failed,
        error_category=str(first.get("errorCategory") or first["stage"]),
        **common,
    )


def _details(
    pipe: _Pipeline, envs: list[str], deployed: list[str], states: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    untouched = [e for e in envs if e not in deployed and not any(s["environment"] == e for s in pipe.stages)]
    details: dict[str, Any] = {
        "stages": pipe.stages,
        "environmentsDone": deployed,
        "environmentsUntouched": untouched,
        "environmentStates": states,
    }
    rolled = [s["rolledBackTo"] for s in pipe.stages if s.get("rolledBackTo") and s["stage"] != "unwind"]
    if rolled:
        details["rolledBackTo"] = rolled[-1]
    return details


def _record_or_none(ctx: StageContext) -> RunRecord | None:
    if not RunRecord.exists(ctx.out_dir):
        return None
    try:
        return RunRecord.load(ctx.out_dir)
    except MlcdError:
        return None


def _print_summary(pipe: _Pipeline, states: dict[str, dict[str, Any]]) -> None:
    print("=== pipeline summary ===", flush=True)
    for s in pipe.stages:
        where = f" {s['environment']}" if s["environment"] else ""
        print(f"  {s['stage']}{where}: {s['outcome']} (exit {s['exitCode']})", flush=True)
    print("=== environments at the end ===", flush=True)
    for name, state in states.items():
        print(f"  {name}: {state['state']} (active: {state['activeBundleId'] or 'unknown'})", flush=True)


def _links(ctx: StageContext, envs: list[str]) -> dict[str, str]:
    links = {"auditTrail": str(ctx.out_dir / "audit.jsonl"), "runRecord": str(ctx.out_dir / "run.json")}
    for env_name in envs:
        env_url = ctx.config().environment(env_name).node.url.rstrip("/")
        links[f"project:{env_name}"] = f"{env_url}/projects/{ctx.config().project}/"
    return links


def end_states(record: RunRecord | None, envs: list[str]) -> dict[str, dict[str, Any]]:
    """Each environment's state and active bundle at the end of the run, from run.json."""
    out: dict[str, dict[str, Any]] = {}
    for name in envs:
        entry = record.data.get("environments", {}).get(name, {}) if record is not None else {}
        state = entry.get("state") or "UNTOUCHED"
        out[name] = {"state": state, "activeBundleId": entry.get("activeBundleId")}
    return out
