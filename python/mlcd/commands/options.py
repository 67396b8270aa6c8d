"""Typed command-line options: what a command reads instead of the raw ``argparse.Namespace``.

:meth:`Options.from_namespace` takes the parsed arguments of any command; a flag
the command does not have keeps its default here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Options:
    """Every option an `mlcd` command can take (defaults for the flags a command does not define)."""

    config: str = "mlcd.yaml"
    out_dir: str = ".mlcd"
    debug: bool = False
    env: str | None = None
    # bundle / run / publish / fetch
    bundle_id: str | None = None
    build_number: str | None = None
    build_url: str | None = None
    git_sha: str | None = None
    # deploy / plan
    plan: bool = False
    archive: str | None = None
    lock_timeout: float | None = None
    # test / smoke / run
    no_rollback: bool = False
    # rollback / unwind
    to: str | None = None
    reason: str | None = None
    policy: str | None = None
    # approve / run
    approver: str | None = None
    comment: str = ""
    approve: tuple[str, ...] = field(default_factory=tuple)
    envs: str | None = None
    # set by `mlcd run` for the stages it runs in-process
    pipeline: bool = False

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> Options:
        """The options of a parsed command line (unknown attributes are ignored)."""
        given = vars(ns)
        values = {f.name: given[f.name] for f in fields(cls) if f.name in given and given[f.name] is not None}
        if "approve" in values:
            values["approve"] = tuple(values["approve"])
        if "build_number" in values:
            values["build_number"] = str(values["build_number"])
        return cls(**values)
