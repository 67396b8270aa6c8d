"""The command context: typed options, configuration, nodes, audit trail and progress output."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from mlcd.commands.options import DeployOptions, Options, options_for
from mlcd.errors import MlcdError
from mlcd.redact import redact

OptionsT = TypeVar("OptionsT", bound=Options)

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig, MlcdConfig
    from mlcd.dss.node import DSSNode


class StageContext:
    """Everything a command needs: arguments, configuration, nodes, audit trail, progress output."""

    def __init__(self, command: str, args: argparse.Namespace | Options) -> None:
        self.options = args if isinstance(args, Options) else options_for(command, args)
        # `deploy --plan` is a plan: it writes plan-<env>.json, never the deploy's stage file
        plan = isinstance(self.options, DeployOptions) and self.options.plan
        self.command = "plan" if command == "deploy" and plan else command
        self.out_dir = Path(self.options.out_dir)
        self.debug = self.options.debug
        self.env_name: str | None = self.options.env
        self.started = time.monotonic()
        self._config: MlcdConfig | None = None
        self._audit: AuditTrail | None = None

    def opts(self, kind: type[OptionsT]) -> OptionsT:
        """This command's options as ``kind`` (TypeError if the command has other options: a bug)."""
        if not isinstance(self.options, kind):
            raise TypeError(f"mlcd {self.command} has {type(self.options).__name__}, not {kind.__name__}")
        return self.options

    # -- configuration -------------------------------------------------------------------------
    def config(self) -> MlcdConfig:
        """The validated `mlcd.yaml` (loaded once)."""
        if self._config is None:
            from mlcd.config import load_config

            self._config = load_config(Path(self.options.config))
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
        return self.options.build_url or os.environ.get("BUILD_URL")

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
