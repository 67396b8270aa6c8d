"""The exit-code table lives once, in mlcd.errors; every copy a user reads is generated from it or checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from mlcd.errors import EXIT_CODE_MEANINGS, ExitCode, exit_codes_help, exit_codes_markdown

ROOT = Path(__file__).resolve().parents[3]


def test_every_exit_code_has_one_meaning() -> None:
    assert list(EXIT_CODE_MEANINGS) == list(ExitCode)


def test_help_prints_the_table() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mlcd", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert exit_codes_help() in out


def test_readme_holds_the_table() -> None:
    assert exit_codes_markdown() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_detailed_tables_cover_exactly_the_codes() -> None:
    codes = {int(c) for c in ExitCode}
    commands = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    section = commands.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert {int(n) for n in re.findall(r"^\| (\d+) \|", section, re.M)} == codes
    groovy = (ROOT / "src" / "org" / "mlcd" / "MlcdCli.groovy").read_text(encoding="utf-8")
    meanings = groovy.split("static String exitMeaning", 1)[1].split("default:", 1)[0]
    assert {int(n) for n in re.findall(r"case (\d+):", meanings)} - {127} == codes
