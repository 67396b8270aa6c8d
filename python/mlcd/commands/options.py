"""Typed command-line options, one dataclass per command, instead of the raw ``argparse.Namespace``.

:class:`Options` holds what every command (and its context) reads; each command's
class adds its own flags. :func:`options_for` builds the right one from parsed
arguments; `mlcd run` builds them directly for the stages it runs in-process.
A command reads its options with ``ctx.opts(DeployOptions)``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Options:
    """What every command reads: config, out dir, debug, the environment, the lock wait, the CI build."""

    config: str = "mlcd.yaml"
    out_dir: str = ".mlcd"
    debug: bool = False
    env: str | None = None
    build_url: str | None = None
    lock_timeout: float | None = None  # `deploy --lock-timeout`; else timeouts.lock
    pipeline: bool = False  # set by `mlcd run` for the stages it runs in-process

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> Options:
        """The options of a parsed command line (attributes the class does not have are ignored)."""
        given = vars(ns)
        values: dict[str, Any] = {
            f.name: given[f.name] for f in fields(cls) if f.name in given and given[f.name] is not None
        }
        if isinstance(values.get("approve"), list):
            values["approve"] = tuple(values["approve"])
        if isinstance(values.get("audit"), list):
            values["audit"] = tuple(values["audit"])
        if "build_number" in values:
            values["build_number"] = str(values["build_number"])
        return cls(**values)


@dataclass(frozen=True)
class BundleOptions(Options):
    """`mlcd bundle`."""

    bundle_id: str | None = None
    build_number: str | None = None
    git_sha: str | None = None


@dataclass(frozen=True)
class BundleIdOptions(Options):
    """`mlcd publish` and `mlcd fetch`."""

    bundle_id: str | None = None


@dataclass(frozen=True)
class FetchOptions(BundleIdOptions):
    """`mlcd fetch`: ``--sha256`` pins the archive the producing build reported."""

    sha256: str | None = None


@dataclass(frozen=True)
class AuditOptions(Options):
    """`mlcd audit ACTION`."""

    action: str = "verify"


@dataclass(frozen=True)
class PlanOptions(Options):
    """`mlcd plan`."""

    archive: str | None = None


@dataclass(frozen=True)
class DeployOptions(PlanOptions):
    """`mlcd deploy` (``--plan`` makes it a plan)."""

    plan: bool = False


@dataclass(frozen=True)
class GateOptions(Options):
    """`mlcd test` and `mlcd smoke`."""

    no_rollback: bool = False


@dataclass(frozen=True)
class RollbackOptions(Options):
    """`mlcd rollback`."""

    to: str | None = None
    reason: str | None = None
    force: bool = False


@dataclass(frozen=True)
class UnwindOptions(Options):
    """`mlcd unwind`."""

    reason: str | None = None
    policy: str | None = None


@dataclass(frozen=True)
class ApproveOptions(Options):
    """`mlcd approve`."""

    approver: str | None = None
    comment: str = ""


@dataclass(frozen=True)
class RunOptions(Options):
    """`mlcd run`."""

    approve: tuple[str, ...] = field(default_factory=tuple)
    approver: str | None = None
    envs: str | None = None
    no_rollback: bool = False
    bundle_id: str | None = None
    build_number: str | None = None


@dataclass(frozen=True)
class JenkinsOptions(Options):
    """`mlcd jenkins onboard|lint|report` (python/mlcd/jenkins/arguments.py)."""

    action: str = "report"
    jenkins_url: str | None = None
    user_env: str = "JENKINS_USER"
    token_env: str = "JENKINS_API_TOKEN"
    folder: str | None = None
    job: str | None = None
    repo: str | None = None
    kind: str = "multibranch"
    scm_credentials: str | None = None
    library_version: str | None = None
    library_scope: str = "global"
    library_repo: str | None = None
    library_credentials: str | None = None
    include: str = "*"
    exclude: str = ""
    tags: bool = False
    branch: str = "main"
    keep_builds: int = 30
    dry_run: bool = False
    checkout: str | None = None
    project: str | None = None
    jenkinsfile: str = "Jenkinsfile"
    last: int = 10
    format: str = "table"


@dataclass(frozen=True)
class DeliveryOptions(Options):
    """`mlcd report delivery`."""

    action: str = "delivery"
    jenkins_url: str | None = None
    user_env: str = "JENKINS_USER"
    token_env: str = "JENKINS_API_TOKEN"
    audit: tuple[str, ...] = field(default_factory=tuple)
    days: float = 30.0
    job: str | None = None
    last: int = 50
    format: str = "table"


@dataclass(frozen=True)
class ApiOptions(Options):
    """`mlcd api ACTION`."""

    action: str = "status"
    service: str | None = None
    version: str | None = None
    to: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RetrainOptions(Options):
    """`mlcd retrain`."""

    model: str | None = None
    if_drift: bool = False


OPTIONS_BY_COMMAND: dict[str, type[Options]] = {
    "bundle": BundleOptions,
    "publish": BundleIdOptions,
    "fetch": FetchOptions,
    "audit": AuditOptions,
    "plan": PlanOptions,
    "deploy": DeployOptions,
    "test": GateOptions,
    "smoke": GateOptions,
    "rollback": RollbackOptions,
    "unwind": UnwindOptions,
    "approve": ApproveOptions,
    "run": RunOptions,
    "jenkins": JenkinsOptions,
    "report": DeliveryOptions,
    "api": ApiOptions,
    "retrain": RetrainOptions,
}


def options_for(command: str, ns: argparse.Namespace | None = None, **values: Any) -> Options:
    """The typed options of ``command``: from parsed arguments, or from ``values`` (in-process stages)."""
    cls = OPTIONS_BY_COMMAND.get(command, Options)
    return cls.from_namespace(ns) if ns is not None else cls(**values)
