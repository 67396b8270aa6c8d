"""What every `mlcd` command shares: its context, its result file and its error handling.

A command module exposes ``run(ctx: StageContext) -> StageResult``.
:func:`execute` builds the context, calls it, writes
``<out-dir>/<stage>[-<env>].json`` whatever happens, prints one line per error
(no traceback unless ``--debug``) and returns the documented exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mlcd.errors import ExitCode, MlcdError
from mlcd.redact import redact

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig, MlcdConfig
    from mlcd.dss.node import DSSNode

OUTCOME_BY_CATEGORY = {
    "gate": "GATE_FAILED",
    "rolled_back": "ROLLED_BACK",
    "rollback_failed": "ROLLBACK_FAILED",
    "nothing_to_roll_back": "NOTHING_TO_ROLL_BACK",
}


@dataclass
class StageResult:
    """What a command reports: written to its stage file and summarised on stdout."""

    # SUCCESS | NOOP | FAILED | GATE_FAILED | ROLLED_BACK | ROLLBACK_FAILED | NOTHING_TO_ROLL_BACK
    outcome: str
    message: str
    exit_code: int = int(ExitCode.OK)
    bundle_id: str | None = None
    reports: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error_category: str | None = None


def stage_file_name(command: str, env: str | None) -> str:
    """File name of a command's result: `validate.json`, `deploy-prod.json`, `pipeline.json`."""
    if command == "run":
        return "pipeline.json"
    return f"{command}-{env}.json" if env else f"{command}.json"


class StageContext:
    """Everything a command needs: arguments, configuration, nodes, audit trail, progress output."""

    def __init__(self, command: str, args: argparse.Namespace) -> None:
        # `deploy --plan` is a plan: it writes plan-<env>.json, never the deploy's stage file
        self.command = "plan" if command == "deploy" and getattr(args, "plan", False) else command
        self.args = args
        self.out_dir = Path(args.out_dir)
        self.debug = bool(getattr(args, "debug", False))
        self.env_name: str | None = getattr(args, "env", None)
        self.started = time.monotonic()
        self._config: MlcdConfig | None = None
        self._audit: AuditTrail | None = None

    # -- configuration -------------------------------------------------------------------------
    def config(self) -> MlcdConfig:
        """The validated `mlcd.yaml` (loaded once)."""
        if self._config is None:
            from mlcd.config import load_config

            self._config = load_config(Path(self.args.config))
        return self._config

    def environment(self, name: str | None = None) -> EnvironmentConfig:
        """The configuration of environment ``name`` (default: ``--env``)."""
        env = name or self.env_name
        if env is None:
            raise MlcdError("no environment given", "pass --env NAME")
        return self.config().environment(env)

    # -- nodes ---------------------------------------------------------------------------------
    def design_node(self) -> DSSNode:
        """A client for the design node, its key read from the configured env var."""
        from mlcd.config import node_for

        return node_for(self.config().design, name="design")

    def env_node(self, name: str | None = None) -> DSSNode:
        """A client for an environment's automation node."""
        from mlcd.config import node_for

        env = self.environment(name)
        return node_for(env.node, name=env.name)

    # -- audit and identity ----------------------------------------------------------------------
    @property
    def actor(self) -> str:
        """Who acts: the CI user or the local user."""
        return (
            os.environ.get("BUILD_USER_ID")
            or os.environ.get("GITHUB_ACTOR")
            or os.environ.get("GITLAB_USER_LOGIN")
            or os.environ.get("USER")
            or "unknown"
        )

    @property
    def build_url(self) -> str | None:
        """The CI build URL, if any."""
        return getattr(self.args, "build_url", None) or os.environ.get("BUILD_URL")

    def audit(self) -> AuditTrail:
        """The append-only audit trail in the out dir."""
        if self._audit is None:
            from mlcd.audit import AuditTrail
            from mlcd.signing import signing_keys

            key = signing_keys(self.config()).current  # exit 2 when mlcd.yaml names an unset key
            self._audit = AuditTrail(
                self.out_dir / "audit.jsonl", actor=self.actor, build_url=self.build_url, key=key
            )
        return self._audit

    # -- output ----------------------------------------------------------------------------------
    def progress(self, message: str) -> None:
        """Print one progress line a person can follow (never a secret)."""
        where = f" {self.env_name}" if self.env_name else ""
        print(f"[mlcd {self.command}{where}] {redact(message)}", flush=True)


def _recorded_bundle_id(out_dir: Path) -> str | None:
    """The run record's bundle id, if there is a readable run record (for stage files of failures)."""
    try:
        data = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    bundle = data.get("bundleId") if isinstance(data, dict) else None
    return bundle if isinstance(bundle, str) else None


def _write_stage_file(ctx: StageContext, result: StageResult) -> Path | None:
    if result.bundle_id is None and ctx.command not in ("validate", "bundle"):
        result.bundle_id = _recorded_bundle_id(ctx.out_dir)
    payload = {
        "stage": ctx.command,
        "environment": ctx.env_name,
        "outcome": result.outcome,
        "exitCode": result.exit_code,
        "bundleId": result.bundle_id,
        "message": result.message,
        "errorCategory": result.error_category,
        "reports": result.reports,
        "links": result.links,
        "details": result.details,
        "durationMs": int((time.monotonic() - ctx.started) * 1000),
    }
    path = ctx.out_dir / stage_file_name(ctx.command, ctx.env_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(redact(json.dumps(payload, indent=2, sort_keys=True)) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        print(
            f"mlcd {ctx.command}: error: cannot write {path}: {exc.strerror} "
            "(fix: make --out-dir writable)",
            file=sys.stderr,
        )
        return None
    return path


def execute(command: str, module: ModuleType, args: argparse.Namespace) -> int:
    """Run one command module; return its exit code. Never lets a traceback reach the user."""
    ctx = StageContext(command, args)
    writable = _out_dir_writable(ctx.out_dir)
    try:
        if not writable:
            raise MlcdError(f"output directory {ctx.out_dir} is not writable", "pass a writable --out-dir")
        result: StageResult = module.run(ctx)
    except MlcdError as exc:
        code = int(exc.exit_code)
        if type(exc) is MlcdError:  # a bare MlcdError is bad usage, not a bug
            code = int(ExitCode.BAD_INPUT)
        details = dict(getattr(exc, "details", {}) or {})
        result = StageResult(
            outcome=OUTCOME_BY_CATEGORY.get(exc.category, "FAILED"),
            message=redact(exc.one_line()),
            exit_code=code,
            error_category=exc.category,
            details=details,
            bundle_id=getattr(exc, "bundle_id", None),
            reports=[str(r) for r in details.get("reports", [])],
        )
        if ctx.debug:
            traceback.print_exc()
        print(f"mlcd {command}: error: {result.message}", file=sys.stderr, flush=True)
    except KeyboardInterrupt as exc:
        code = int(getattr(exc, "exit_code", 130))
        result = StageResult(
            outcome="FAILED",
            message=f"interrupted ({'SIGTERM' if code == 143 else 'SIGINT'}); check the environment with "
            "`mlcd status` and run the command again or `mlcd rollback`",
            exit_code=code,
            error_category="interrupted",
        )
        print(f"mlcd {command}: interrupted", file=sys.stderr, flush=True)
    except Exception as exc:  # the last line of defence: one line, no traceback
        if ctx.debug:
            traceback.print_exc()
        text = redact(f"{type(exc).__name__}: {exc}".replace("\n", " "))
        result = StageResult(
            outcome="FAILED",
            message=f"internal error: {text} (run again with --debug and report it)",
            exit_code=int(ExitCode.INTERNAL),
            error_category="internal",
        )
        print(f"mlcd {command}: error: {result.message}", file=sys.stderr, flush=True)
    if writable:  # else the one error line already says so
        _write_stage_file(ctx, result)
    if result.exit_code == 0:
        ctx.progress(f"{result.outcome}: {result.message}")
    return result.exit_code


def _out_dir_writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)
