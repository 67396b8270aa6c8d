"""Running one command: build its context, call it, write its stage file whatever happens, map errors.

A command module exposes ``run(ctx: StageContext) -> StageResult``.
:func:`execute` builds the context, calls it, writes
``<out-dir>/<stage>[-<env>].json`` whatever happens (:func:`write_stage_file`),
prints one line per error (no traceback unless ``--debug``) and returns the
documented exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from mlcd import signals
from mlcd.commands.context import StageContext
from mlcd.commands.options import Options
from mlcd.commands.result import StageResult, result_of_error
from mlcd.errors import ExitCode, Interrupted, MlcdError
from mlcd.redact import redact

__all__ = ["StageContext", "StageResult", "execute", "stage_file_name", "write_stage_file"]


def stage_file_name(command: str, env: str | None) -> str:
    """File name of a command's result: `validate.json`, `deploy-prod.json`, `pipeline.json`."""
    if command == "run":
        return "pipeline.json"
    return f"{command}-{env}.json" if env else f"{command}.json"


def _recorded_bundle_id(out_dir: Path) -> str | None:
    """The run record's bundle id, if there is a readable run record (for stage files of failures)."""
    try:
        data = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    bundle = data.get("bundleId") if isinstance(data, dict) else None
    return bundle if isinstance(bundle, str) else None


def write_stage_file(ctx: StageContext, result: StageResult) -> Path | None:
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


_depth = [0]  # `mlcd run` executes each stage through a nested execute: only the outermost finishes


def execute(command: str, module: ModuleType, args: argparse.Namespace | Options) -> int:
    """Run one command module; return its exit code. Never lets a traceback reach the user.

    Once the outermost command's result is decided, SIGTERM/SIGINT/SIGHUP are ignored
    (:func:`mlcd.signals.finish`): its stage file and exit code then say what it did.
    """
    ctx = StageContext(command, args)
    writable = _out_dir_writable(ctx.out_dir)
    _depth[0] += 1
    try:
        try:
            result = _result(command, module, ctx, writable)
        except KeyboardInterrupt as exc:  # the first signal landed after the command, before finish()
            result = _interrupted(command, exc)
        finally:
            if _depth[0] == 1:
                signals.finish()
    finally:
        _depth[0] -= 1
    if writable:  # else the one error line already says so
        write_stage_file(ctx, result)
        from mlcd.reports.release_page import refresh_release_page  # never raises: the page is a view

        refresh_release_page(ctx.out_dir)
    if result.exit_code == 0:
        ctx.progress(f"{result.outcome}: {result.message}")
    return result.exit_code


def _result(command: str, module: ModuleType, ctx: StageContext, writable: bool) -> StageResult:
    """The command's result, or the result of its error (one line on stderr)."""
    try:
        if not writable:
            raise MlcdError(f"output directory {ctx.out_dir} is not writable", "pass a writable --out-dir")
        result: StageResult = module.run(ctx)
    except MlcdError as exc:
        result = result_of_error(exc)
        if ctx.debug:
            traceback.print_exc()
        print(f"mlcd {command}: error: {result.message}", file=sys.stderr, flush=True)
    except KeyboardInterrupt as exc:
        result = _interrupted(command, exc)
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
    return result


def _interrupted(command: str, exc: KeyboardInterrupt) -> StageResult:
    code = exc.exit_code if isinstance(exc, Interrupted) else 130
    name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
    print(f"mlcd {command}: interrupted", file=sys.stderr, flush=True)
    return StageResult(
        outcome="FAILED",
        message=f"interrupted ({name}); check the environment with "
        "`mlcd status` and run the command again or `mlcd rollback`",
        exit_code=code,
        error_category="interrupted",
    )


def _out_dir_writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)
