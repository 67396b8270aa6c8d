"""The command lines of `mlcd jenkins onboard|lint|report` and `mlcd report delivery` (argparse only).

Credentials are never arguments: ``--user-env``/``--token-env`` name the environment
variables holding the Jenkins user and API token.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from typing import Any

from mlcd.usage import text_arg

AddCommon = Callable[[argparse.ArgumentParser], None]
_ITEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def _item_name(value: str) -> str:
    if not _ITEM.match(value):
        raise argparse.ArgumentTypeError(
            f"'{value[:80]}' is not a Jenkins item name (fix: use letters, digits, '.', '_', '-')"
        )
    return value


def _job_path(value: str) -> str:
    for part in value.split("/"):
        _item_name(part)
    return value


def _count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 1000 (fix: give e.g. 10)")
    return int(value)


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        days = -1.0
    if not 0 < days <= 3660:
        raise argparse.ArgumentTypeError("must be a number of days from 1 to 3660 (fix: give e.g. 30)")
    return days


def _connection(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--jenkins-url",
        default=os.environ.get("JENKINS_URL"),
        type=text_arg,
        help="the controller's URL (default: $JENKINS_URL)" + ("" if required else "; without it, no builds"),
    )
    p.add_argument(
        "--user-env", default="JENKINS_USER", type=text_arg, help="variable holding the Jenkins user"
    )
    p.add_argument(
        "--token-env",
        default="JENKINS_API_TOKEN",
        type=text_arg,
        help="variable holding the user's API token (never pass a token as an argument)",
    )


def _onboard(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folder", required=True, type=_item_name, help="the team's folder")
    p.add_argument("--job", required=True, type=_item_name, help="the job in the folder (e.g. the project)")
    p.add_argument("--repo", required=True, type=text_arg, help="the team repository's Git URL")
    p.add_argument("--kind", choices=("multibranch", "pipeline"), default="multibranch", help="job kind")
    p.add_argument("--scm-credentials", type=text_arg, help="Jenkins credentials id for the repository")
    p.add_argument(
        "--library-version", type=text_arg, help="mlcd library version to pin (default: this mlcd's)"
    )
    p.add_argument(
        "--library-scope",
        choices=("global", "folder"),
        default="global",
        help="global: the controller's mlcd library; folder: define it on the folder (needs --library-repo)",
    )
    p.add_argument("--library-repo", type=text_arg, help="Git URL of the mlcd library (folder scope)")
    p.add_argument("--library-credentials", type=text_arg, help="credentials id for --library-repo")
    p.add_argument("--include", default="*", type=text_arg, help="branches to build (wildcards, default *)")
    p.add_argument("--exclude", default="", type=text_arg, help="branches not to build (wildcards)")
    p.add_argument("--tags", action="store_true", help="also discover tags (multibranch)")
    p.add_argument("--branch", default="main", type=text_arg, help="branch a pipeline job builds")
    p.add_argument("--keep-builds", type=_count, default=30, help="builds kept per branch (default 30)")
    p.add_argument("--dry-run", action="store_true", help="print the XML and the diff; change nothing")
    p.add_argument("--checkout", type=text_arg, help="also write Jenkinsfile and a starter mlcd.yaml here")
    p.add_argument("--project", type=text_arg, help="DSS project key for the starter mlcd.yaml")


def _lint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jenkinsfile", default="Jenkinsfile", type=text_arg, help="Jenkinsfile to check")


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=("table", "json", "html"),
        default="table",
        help="what to print (JSON and HTML files are always written under --out-dir/reports/)",
    )


def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", required=True, type=_job_path, help="job or folder (team/churn, team/churn/main)")
    p.add_argument("--last", type=_count, default=10, help="builds per job (default 10)")
    _format(p)


def _delivery(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audit",
        action="append",
        default=[],
        type=text_arg,
        help="an audit.jsonl or a directory searched for them (repeatable; default: --out-dir)",
    )
    p.add_argument("--days", type=_days, default=30.0, help="window in days, ending now (default 30)")
    p.add_argument(
        "--job", type=_job_path, help="with --jenkins-url: also read the audit trails of its builds"
    )
    p.add_argument("--last", type=_count, default=50, help="builds per job read with --job (default 50)")
    _format(p)


def add_jenkins(sub: Any, add_common: AddCommon, help_text: str, epilog: str) -> None:
    """`mlcd jenkins ACTION`: ACTION is onboard, lint or report, each with the common options."""
    p = sub.add_parser(
        "jenkins",
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext, build in (
        (
            "onboard",
            "create or update a team's folder and job (idempotent); --dry-run shows the diff",
            _onboard,
        ),
        (
            "lint",
            "check a Jenkinsfile: the controller's linter, or mlcd's rules for mlcdPipeline(...)",
            _lint,
        ),
        ("report", "the last builds of a job or folder: stages, failing tests, description, links", _report),
    ):
        a = actions.add_parser(
            name,
            help=helptext,
            description=helptext,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_common(a)
        _connection(a)
        build(a)


def add_report(sub: Any, add_common: AddCommon, help_text: str, epilog: str) -> None:
    """`mlcd report delivery`: delivery metrics from audit trails (and a controller's builds)."""
    p = sub.add_parser(
        "report",
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser(
        "delivery",
        help="deployment frequency, lead time, change failure rate, time to restore",
        description="delivery metrics per project and environment from mlcd's audit trails",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(a)
    _connection(a, required=False)
    _delivery(a)
