"""The argument parser of every `mlcd` command (the one place it is built), importable without the CLI.

Only argparse and the exit-code table are imported here. Secrets are never
accepted as arguments: API keys and tokens are read from the environment
variables that `mlcd.yaml` names.
"""

from __future__ import annotations

import argparse
import os

from mlcd.errors import exit_codes_help
from mlcd.usage import (
    UsageParser,
    bundle_id_arg,
    env_list_arg,
    env_name_arg,
    saved_model_arg,
    seconds_arg,
    text_arg,
)

EXIT_CODES_HELP = exit_codes_help()

# command name -> (module under mlcd.stages, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "check the project on the design node is ready to release (JUnit XML out)"),
    "bundle": (
        "bundle",
        "export a bundle on the design node, download it with its sha256, start the run record",
    ),
    "publish": ("publish", "store the bundle archive in the artifact repository (HTTP PUT) and verify it"),
    "fetch": ("fetch", "download a published bundle by id; verify its signature (or --sha256) and sha256"),
    "plan": ("plan", "show what `deploy --env E` would change, changing nothing"),
    "deploy": ("deploy", "import, preload, activate and verify the bundle on an environment"),
    "test": ("test", "run an environment's test scenarios; JUnit XML and HTML report out"),
    "smoke": ("smoke", "run the smoke scenario(s); roll back automatically on failure"),
    "rollback": ("rollback", "re-activate the previous (or a named) bundle, verify it, re-run smoke"),
    "unwind": (
        "unwind",
        "after a later environment failed: roll this one back or keep it (on_failure in mlcd.yaml)",
    ),
    "approve": ("approve", "record an approval of this run's bundle for an environment"),
    "status": ("status", "show the active bundle, imported bundles and last test outcomes"),
    "audit": ("audit", "`audit verify`: check the audit trail's chain, naming the first bad line"),
    "doctor": ("doctor", "check, read-only, what mlcd assumes about each DSS node (before a first deploy)"),
    "run": ("run", "the whole flow: validate, bundle, publish, then deploy/test/smoke per environment"),
    "jenkins": ("jenkins", "for the platform team: `jenkins onboard|lint|report` through a controller's API"),
    "report": ("report", "`report delivery`: deployment frequency, lead time, change failure rate, restore"),
    "api": (
        "api",
        "a real-time API service: deploy a version through the API Deployer, gate it, revert it, or status",
    ),
    "retrain": (
        "retrain",
        "run the retrain scenario on an environment; keep a new model version only if it beats the champion",
    ),
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
    p.add_argument(
        "--sha256",
        metavar="HEX",
        help="accept only this archive (sha256 from the build that produced it), signed metadata or not",
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
    p.add_argument(
        "--force",
        action="store_true",
        help="re-activate the --to bundle even though it failed a test or smoke gate",
    )

    p = add("unwind")
    _add_env(p)
    p.add_argument(
        "--reason",
        default="a later environment failed",
        type=text_arg,
        help="why, recorded in the audit trail",
    )
    p.add_argument(
        "--policy",
        choices=("rollback", "keep"),
        default=None,
        help="override on_failure.earlier_environments of mlcd.yaml",
    )

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

    _add_env(add("doctor"), required=False)

    p = add("audit")
    p.add_argument("action", choices=["verify"], help="verify: check every record's MAC and link")

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

    from mlcd.jenkins.arguments import add_jenkins, add_report

    add_jenkins(sub, _add_common, COMMANDS["jenkins"][1], EXIT_CODES_HELP)
    add_report(sub, _add_common, COMMANDS["report"][1], EXIT_CODES_HELP)
    p = add("api")
    p.add_argument(
        "action",
        choices=["deploy", "gate", "revert", "status"],
        help="deploy: publish a version, switch the deployment, gate it (revert on failure); "
        "gate: run the gates on the deployed version; revert: back to the previous version; status",
    )
    p.add_argument("--service", required=True, type=text_arg, help="API service id from api_services")
    _add_env(p)
    p.add_argument(
        "--version",
        type=bundle_id_arg,
        help="deploy: the version id (default: <service>_<utc>_<git sha>_b<build>)",
    )
    p.add_argument(
        "--to",
        type=bundle_id_arg,
        help="revert: this version (default: the one before the last deploy)",
    )
    p.add_argument(
        "--reason",
        default="requested",
        type=text_arg,
        help="revert: why, recorded in the audit trail",
    )
    p.add_argument(
        "--lock-timeout",
        type=seconds_arg("lock_timeout"),
        default=None,
        help="seconds to wait for the service's deploy lock (default 300)",
    )

    p = add("retrain")
    _add_env(p)
    p.add_argument(
        "--model",
        metavar="ID",
        type=saved_model_arg,
        help="judge only this saved model (default: every one in continuous_training.models)",
    )
    p.add_argument(
        "--if-drift",
        action="store_true",
        help="retrain only when continuous_training.drift's dataset metric is above its threshold",
    )
    p.add_argument(
        "--lock-timeout",
        type=seconds_arg("lock_timeout"),
        default=None,
        help="seconds to wait for the environment's deploy lock",
    )

    sub.add_parser(
        "sim",
        help="the local DSS stand-in (run `mlcd sim --help`)",
        add_help=False,
    )
    return parser
