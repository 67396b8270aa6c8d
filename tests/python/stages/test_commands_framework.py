"""The commands framework: typed options, a parser importable without the CLI, no re-parsing per stage."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from mlcd.commands.options import DeployOptions, Options, RunOptions, UnwindOptions, options_for
from mlcd.commands.parser import build_parser

PACKAGE = Path(__file__).resolve().parents[3] / "python" / "mlcd"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_but_the_entry_points_imports_the_cli() -> None:
    importers = [p.name for p in PACKAGE.rglob("*.py") if "mlcd.cli" in imports_of(p)]
    assert sorted(importers) == ["__main__.py"]


def test_commands_read_typed_options_never_the_namespace() -> None:
    offenders = [str(p) for p in PACKAGE.rglob("*.py") if "ctx.args" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_the_parser_is_importable_without_the_cli() -> None:
    code = "import sys, mlcd.commands.parser; assert 'mlcd.cli' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_command_has_its_own_typed_options() -> None:
    parser = build_parser()

    def parsed(*argv: str) -> Options:
        return options_for(argv[0], parser.parse_args(list(argv)))

    deploy = parsed("deploy", "--env", "prod", "--lock-timeout", "3", "--plan")
    assert isinstance(deploy, DeployOptions) and (deploy.env, deploy.lock_timeout, deploy.plan) == (
        "prod",
        3.0,
        True,
    )
    run = parsed("run", "--approve", "prod", "--approve", "uat")
    assert isinstance(run, RunOptions) and run.approve == ("prod", "uat") and run.env is None
    unwind = parsed("unwind", "--env", "test", "--policy", "keep")
    assert isinstance(unwind, UnwindOptions) and (unwind.policy, unwind.reason) == (
        "keep",
        "a later environment failed",
    )
    assert type(parsed("status", "--env", "test")) is Options
