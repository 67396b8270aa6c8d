"""Command-line usage errors: one line `mlcd <command>: error: <what> (fix: <how>)`, exit 2, nothing run.

Every case fails before anything reads mlcd.yaml (``--config`` points nowhere): the
argument parser itself refuses the command line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlcd.cli import main

CASES = {
    # argv: (command named in the line, words the line must contain)
    "deploy --env test --force": ("deploy", ("unknown option --force",)),
    "deploy --env test --lock-timout 5": ("deploy", ("--lock-timout", "did you mean --lock-timeout")),
    "deploy --env test stray": ("deploy", ("unexpected argument 'stray'",)),
    "deploy": ("deploy", ("missing --env",)),
    "approve --env test": ("approve", ("missing --approver",)),
    "deploy --env": ("deploy", ("--env needs a value",)),
    "deploy --env test --env prod": ("deploy", ("--env given twice",)),
    "rollback --env test --to A --to B": ("rollback", ("--to given twice",)),
    "status --env test --debug=yes": ("status", ("--debug takes no value",)),
    "run --app test": ("run", ("ambiguous option",)),
    "deplyo --env test": ("", ("unknown command 'deplyo'", "did you mean 'deploy'")),
    # numbers: the range comes from the schema (timeouts.lock)
    "deploy --env test --lock-timeout -5": ("deploy", ("--lock-timeout", "from 0 to 86400", "-5")),
    "deploy --env test --lock-timeout -1": ("deploy", ("from 0 to 86400",)),
    "deploy --env test --lock-timeout nan": ("deploy", ("from 0 to 86400", "nan")),
    "deploy --env test --lock-timeout inf": ("deploy", ("from 0 to 86400",)),
    "deploy --env test --lock-timeout 1e15": ("deploy", ("from 0 to 86400",)),
    "deploy --env test --lock-timeout 99999999999": ("deploy", ("from 0 to 86400",)),
    "deploy --env test --lock-timeout soon": ("deploy", ("from 0 to 86400", "'soon'")),
    # bundle ids
    "bundle --bundle-id .": ("bundle", ("--bundle-id", "is a path")),
    "bundle --bundle-id ..": ("bundle", ("--bundle-id", "is a path")),
    "bundle --bundle-id=-rf": ("bundle", ("starts with '-'",)),
    "bundle --bundle-id=.hidden": ("bundle", ("starts with '.'",)),
    "fetch --bundle-id a/b": ("fetch", ("not allowed",)),
    "rollback --env test --to ..": ("rollback", ("--to", "is a path")),
    "deploy --env ../prod": ("deploy", ("not an environment name",)),
}

CONTROL_CASES = {
    "approver-newline": (["approve", "--env", "test", "--approver", "alice\nbob"], "approve", "--approver"),
    "approver-escape": (["approve", "--env", "test", "--approver", "al\x1b[2Jbob"], "approve", "--approver"),
    "comment-cr": (["approve", "--env", "test", "--approver", "a", "--comment", "ok\rfake"], "approve",
                   "--comment"),
    "reason-tab": (["rollback", "--env", "test", "--reason", "a\tb"], "rollback", "--reason"),
    "run-approver-unicode-line-break": (["run", "--approver", "a\u2028b"], "run", "--approver"),
    "bundle-id-empty": (["bundle", "--bundle-id", ""], "bundle", "--bundle-id"),
    "env-newline": (["status", "--env", "test\nprod"], "status", "--env"),
}


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "usage:" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line, got {stderr!r}"
    return lines[0]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--config", "/nonexistent/mlcd.yaml"] if argv[0] != "deplyo" else argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    return _one_line(err)


@pytest.mark.parametrize("argv", sorted(CASES))
def test_usage_error_is_one_line_naming_command_with_fix(
    argv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad command line ends with exit 2 and one line naming the command, the problem and a fix."""
    command, words = CASES[argv]
    line = _run(argv.split(" "), capsys)
    prefix = f"mlcd {command}: error: " if command else "mlcd: error: "
    assert line.startswith(prefix), line
    assert line.endswith(")") and " (fix: " in line, line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"


@pytest.mark.parametrize("name", sorted(CONTROL_CASES))
def test_control_characters_in_recorded_text_are_refused(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names, comments and reasons go into records: a control character is refused, shown escaped."""
    argv, command, option = CONTROL_CASES[name]
    line = _run(argv, capsys)
    assert line.startswith(f"mlcd {command}: error: {option} "), line
    assert "(fix: " in line


def test_a_real_process_prints_one_line_and_no_usage_block(tmp_path: Path) -> None:
    """What a shell user sees: one stderr line, exit 2, nothing on stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlcd", "deploy", "--env", "test", "--force"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "mlcd deploy: error: unknown option --force "
        "(fix: remove it; `mlcd deploy --help` lists the options)\n"
    )


def test_valid_command_lines_still_parse() -> None:
    """The checks refuse only bad values: repeatable --approve, in-range numbers and ids pass."""
    from mlcd.cli import build_parser

    args = build_parser().parse_args(
        ["run", "--approve", "test", "--approve", "prod", "--bundle-id", "_X.1-b2", "--envs", "test,prod"]
    )
    assert args.approve == ["test", "prod"] and args.bundle_id == "_X.1-b2"
    args = build_parser().parse_args(["deploy", "--env", "test", "--lock-timeout", "0"])
    assert args.lock_timeout == 0.0
    args = build_parser().parse_args(["deploy", "--env", "test", "--lock-timeout", "86400"])
    assert args.lock_timeout == 86400.0
