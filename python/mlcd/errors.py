"""The mlcd error hierarchy and the documented exit codes.

Every error a user can meet is an :class:`MlcdError`: one line saying what is
wrong, an optional hint saying how to fix it, and the exit code the CLI ends
with. Nothing here may carry a secret: messages are built from names, never
from API keys or tokens.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Documented exit codes of every `mlcd` command (see README, "Exit codes")."""

    OK = 0
    INTERNAL = 1  # a bug in mlcd: report it (run again with --debug for the traceback)
    BAD_INPUT = 2  # bad command line, configuration, archive or environment
    GATE_FAILED = 3  # quality gate failed (tests or smoke), nothing else went wrong
    ROLLED_BACK = 4  # deployment failed after activation and was rolled back, verified
    ROLLBACK_FAILED = 5  # rollback failed or state unknown: a person must act
    NODE_UNREACHABLE = 6  # node unreachable, TLS failure, or unauthorised API key
    NOTHING_TO_ROLL_BACK = 7  # rollback asked for, but there is no previous bundle
    DEPLOY_FAILED = 8  # DSS refused a step before activation; the environment is unchanged
    LOCKED = 9  # another mlcd holds the environment's deploy lock past the timeout


# the one-line meaning of each exit code: `mlcd --help`, README and the docs are generated from or checked
# against this table (tests/python/docs/test_exit_codes.py)
EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success (also: re-deploying the active bundle, a no-op)",
    ExitCode.INTERNAL: "internal error in mlcd (run again with --debug and report it)",
    ExitCode.BAD_INPUT: "bad input: command line, mlcd.yaml, archive, missing environment variable",
    ExitCode.GATE_FAILED: "quality gate failed: test or smoke scenarios did not pass",
    ExitCode.ROLLED_BACK: "deployment failed after activation and was rolled back (verified)",
    ExitCode.ROLLBACK_FAILED: "rollback failed or state unverified: a person must act",
    ExitCode.NODE_UNREACHABLE: "node unreachable, TLS failure, or API key refused",
    ExitCode.NOTHING_TO_ROLL_BACK: "nothing to roll back to (first deploy of the project on that node)",
    ExitCode.DEPLOY_FAILED: "DSS refused a step before activation; the environment is unchanged",
    ExitCode.LOCKED: "another deploy holds the environment's lock past the timeout",
}


def exit_codes_help() -> str:
    """The exit-code table as `mlcd --help` prints it."""
    return "exit codes:\n" + "".join(f"  {int(c)}  {m}\n" for c, m in EXIT_CODE_MEANINGS.items())


def exit_codes_markdown() -> str:
    """The exit-code table as README.md holds it."""
    rows = "".join(f"| {int(c)} | {m} |\n" for c, m in EXIT_CODE_MEANINGS.items())
    return "| code | meaning |\n|---|---|\n" + rows


class MlcdError(Exception):
    """Base of every error mlcd reports to a user.

    ``message`` says what is wrong (and where), ``hint`` how to fix it.
    ``category`` is a short machine-readable name written to `.mlcd/<stage>.json`.
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    category: str = "internal"
    recorded: bool = False  # the environment's audit `deployment` record of this failure is written
    details: dict[str, Any]

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = {}

    def one_line(self) -> str:
        """The single line printed to the user."""
        from mlcd.inputrules import visible

        text = visible(self.message.replace("\n", " ").strip())
        if self.hint:
            text = f"{text} (fix: {visible(self.hint.strip())})"
        return text

    def without_fix(self) -> str:
        """:meth:`one_line` without its ``(fix: ...)`` part, for a message that carries the fix itself."""
        from mlcd.inputrules import visible

        text = self.one_line()
        suffix = f" (fix: {visible(self.hint.strip())})" if self.hint else ""
        return text[: -len(suffix)] if suffix and text.endswith(suffix) else text

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(MlcdError):
    """`mlcd.yaml` or a command-line flag is invalid."""

    exit_code = ExitCode.BAD_INPUT
    category = "config"


class InputError(MlcdError):
    """Bad input other than configuration: archive, run record, environment variables, files."""

    exit_code = ExitCode.BAD_INPUT
    category = "input"


class GateFailed(MlcdError):
    """A quality gate (test or smoke scenarios) did not pass."""

    exit_code = ExitCode.GATE_FAILED
    category = "gate"


class RolledBack(MlcdError):
    """The deployment failed after activation and the previous bundle is active again, verified."""

    exit_code = ExitCode.ROLLED_BACK
    category = "rolled_back"


class RollbackFailed(MlcdError):
    """Rollback failed, or the environment's state could not be verified: a person must act."""

    exit_code = ExitCode.ROLLBACK_FAILED
    category = "rollback_failed"


class NothingToRollBack(MlcdError):
    """Rollback was needed or asked for, but no previous bundle exists (first deploy)."""

    exit_code = ExitCode.NOTHING_TO_ROLL_BACK
    category = "nothing_to_roll_back"


class DeployFailed(MlcdError):
    """DSS refused a deployment step before activation; the environment is unchanged."""

    exit_code = ExitCode.DEPLOY_FAILED
    category = "deploy_failed"


class LockTimeout(MlcdError):
    """Another mlcd process holds the environment's deploy lock."""

    exit_code = ExitCode.LOCKED
    category = "locked"


class NodeError(MlcdError):
    """A DSS node could not be reached, or refused our credentials."""

    exit_code = ExitCode.NODE_UNREACHABLE
    category = "node"


class Interrupted(KeyboardInterrupt):
    """SIGTERM, SIGINT or SIGHUP, raised in the main thread so the release core ends verified and recorded."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code


_BY_OUTCOME: dict[str, type[MlcdError]] = {
    "ROLLED_BACK": RolledBack,
    "ROLLBACK_FAILED": RollbackFailed,
    "NOTHING_TO_ROLL_BACK": NothingToRollBack,
    "GATE_FAILED": GateFailed,
    "FAILED": RollbackFailed,
}


def error_for(outcome: str, exit_code: ExitCode, message: str, hint: str | None) -> MlcdError:
    """The error a command ends with for a decided ``outcome`` and exit code (see mlcd.release.decisions)."""
    err = _BY_OUTCOME.get(outcome, MlcdError)(message, hint)
    err.exit_code = exit_code
    return err
