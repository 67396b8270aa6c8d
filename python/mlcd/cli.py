"""The `mlcd` command line: argument parsing and dispatch.

Only argparse is imported at start-up so that `mlcd --help` and
`mlcd --version` stay fast (every Jenkins stage pays for them); each command's
module is imported when that command runs. Secrets are never accepted as
arguments: API keys and tokens are read from the environment variables that
`mlcd.yaml` names.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mlcd.usage import UsageParser, bundle_id_arg, env_list_arg, env_name_arg, seconds_arg, text_arg

EXIT_CODES_HELP = """\
exit codes:
  0  success (also: re-deploying the active bundle, a no-op)
  1  internal error in mlcd (run again with --debug and report it)
  2  bad input: command line, mlcd.yaml, archive, missing environment variable
  3  quality gate failed: test or smoke scenarios did not pass
  4  deployment failed after activation and was rolled back (verified)
  5  rollback failed or state unverified: a person must act
  6  node unreachable, TLS failure, or API key refused
  7  nothing to roll back to (first deploy of the project on that node)
  8  DSS refused a step before activation; the environment is unchanged
  9  another deploy holds the environment's lock past the timeout
"""

# command name -> (module under mlcd.stages, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "check the project on the design node is ready to release (JUnit XML out)"),
    "bundle": (
        "bundle",
        "export a bundle on the design node, download it with its sha256, start the run record",
    ),
    "publish": ("publish", "store the bundle archive in the artifact repository (HTTP PUT) and verify it"),
    "fetch": ("fetch", "download a published bundle archive by id and verify its sha256"),
    "plan": ("plan", "show what `deploy --env E` would change, changing nothing"),
    "deploy": ("deploy", "import, preload, activate and verify the bundle on an environment"),
    "test": ("test", "run an environment's test scenarios; JUnit XML and HTML report out"),
    "smoke": ("smoke", "run the smoke scenario(s); roll back automatically on failure"),
    "rollback": ("rollback", "re-activate the previous (or a named) bundle, verify it, re-run smoke"),
    "approve": ("approve", "record an approval of this run's bundle for an environment"),
    "status": ("status", "show the active bundle, imported bundles and last test outcomes"),
    "run": ("run", "the whole flow: validate, bundle, publish, then deploy/test/smoke per environment"),
}


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=os.environ.get("MLCD_CONFIG", "mlcd.yaml"),
        type=text_arg,
        help="path to mlcd.yaml (default: $MLCD_CONFIG or ./mlcd.yaml)",
    )
    p.add_argument(
        "--out-dir",
        default=os.environ.get("MLCD_OUT_DIR", ".mlcd"),
        type=text_arg,
        help="where run record, stage results, reports and audit trail go "
        "(default: $MLCD_OUT_DIR or ./.mlcd)",
    )
    p.add_argument("--debug", action="store_true", help="print tracebacks and HTTP details (never secrets)")


def _add_env(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--env",
        required=required,
        metavar="ENV",
        type=env_name_arg,
        help="target environment name from mlcd.yaml",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every `mlcd` command."""
    from mlcd import __version__

    parser = UsageParser(
        prog="mlcd",
        description="CI/CD for Dataiku DSS projects: validate, bundle, publish, deploy, test, "
        "smoke-test and roll back, with an audit trail. Secrets come only from environment "
        "variables named in mlcd.yaml.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlcd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=COMMANDS[name][1],
            description=COMMANDS[name][1],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(p)
        return p

    add("validate")

    p = add("bundle")
    p.add_argument(
        "--bundle-id", type=bundle_id_arg, help="use this bundle id instead of the configured format"
    )
    p.add_argument(
        "--build-number", default=os.environ.get("BUILD_NUMBER"), type=text_arg, help="CI build number"
    )
    p.add_argument("--build-url", default=os.environ.get("BUILD_URL"), type=text_arg, help="CI build URL")
    p.add_argument(
        "--git-sha",
        default=None,
        type=text_arg,
        help="git commit for {git_sha} in the bundle id "
        "(default: git rev-parse --short=8 HEAD in mlcd.yaml's directory)",
    )

    p = add("publish")
    p.add_argument("--bundle-id", type=bundle_id_arg, help="bundle to publish (default: the run record's)")

    p = add("fetch")
    p.add_argument(
        "--bundle-id",
        required=True,
        type=bundle_id_arg,
        help="bundle id to download from the artifact repository",
    )

    p = add("plan")
    _add_env(p)

    p = add("deploy")
    _add_env(p)
    p.add_argument("--plan", action="store_true", help="print what would change and change nothing")
    p.add_argument("--archive", type=text_arg, help="bundle archive to deploy (default: the run record's)")
    p.add_argument(
        "--lock-timeout",
        type=seconds_arg("lock_timeout"),
        default=None,
        help="seconds to wait for the deploy lock",
    )

    p = add("test")
    _add_env(p)

    p = add("smoke")
    _add_env(p)
    p.add_argument("--no-rollback", action="store_true", help="do not roll back when the smoke test fails")

    p = add("rollback")
    _add_env(p)
    p.add_argument(
        "--to",
        metavar="BUNDLE",
        type=bundle_id_arg,
        help="bundle id to re-activate (default: the one before this run)",
    )
    p.add_argument("--reason", default="requested", type=text_arg, help="why, recorded in the audit trail")

    p = add("approve")
    _add_env(p)
    p.add_argument(
        "--approver", required=True, type=text_arg, help="who approved (recorded in the audit trail)"
    )
    p.add_argument(
        "--comment", default="", type=text_arg, help="free-text comment recorded with the approval"
    )

    p = add("status")
    _add_env(p)

    p = add("run")
    p.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="ENV",
        type=env_name_arg,
        help="approve deployment to ENV (repeatable); needed for environments with approval: true",
    )
    p.add_argument(
        "--approver", default=os.environ.get("USER", "unknown"), type=text_arg, help="who approves"
    )
    p.add_argument(
        "--envs", type=env_list_arg, help="comma-separated subset of environments, in config order"
    )
    p.add_argument("--no-rollback", action="store_true", help="do not roll back on failure")
    p.add_argument(
        "--bundle-id", type=bundle_id_arg, help="use this bundle id instead of the configured format"
    )
    p.add_argument(
        "--build-number", default=os.environ.get("BUILD_NUMBER"), type=text_arg, help="CI build number"
    )
    p.add_argument("--build-url", default=os.environ.get("BUILD_URL"), type=text_arg, help="CI build URL")

    sub.add_parser(
        "sim",
        help="the local DSS stand-in (run `mlcd sim --help`)",
        add_help=False,
    )
    return parser


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (Jenkins' abort), so that stages clean up and report."""

    exit_code = 143


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _configure_logging(debug: bool) -> None:
    """Warnings (retries, TLS opt-out) on stdout with the progress lines; with --debug, HTTP details.

    stderr is kept for the one-line error a failed command ends with. Always redacted.
    """
    import logging

    from mlcd.redact import redact

    class _Redacting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Redacting("[mlcd %(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    if not debug:
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mlcd CLI and return its exit code."""
    from mlcd.console import install

    install()  # a closed stdout/stderr (`mlcd deploy | head`) never interrupts a command
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"]:
        from mlcd.sim.cli import main as sim_main

        return sim_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help()
        return 2
    module_name, _ = COMMANDS[args.command]
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    _configure_logging(bool(args.debug))
    from mlcd.stages.runner import execute

    module = importlib.import_module(f"mlcd.stages.{module_name}")
    return execute(args.command, module, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
