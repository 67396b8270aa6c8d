"""The README cannot go stale silently: what it shows is checked against the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from mlcd.commands.parser import COMMANDS, EXIT_CODES_HELP, build_parser
from mlcd.config import load_config
from mlcd.errors import ExitCode

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    """Bodies of the fenced blocks whose info string is exactly ``lang``."""
    fences = re.findall(r"^```(\w*)\n(.*?)^```$", README, flags=re.S | re.M)
    return [body for info, body in fences if info == lang]


def test_first_screen_shows_the_two_commands_then_the_shortest_jenkinsfile() -> None:
    head = README[:1500]
    assert head.index("make demo") < head.index("make test") < head.index("@Library('mlcd@")


def test_the_jenkinsfile_shown_is_the_example_a_team_commits() -> None:
    shown = _blocks("groovy")[0].strip()
    assert shown == (ROOT / "examples/churn/Jenkinsfile").read_text(encoding="utf-8").strip()
    version = (ROOT / "resources/mlcd/version.txt").read_text(encoding="utf-8").strip()
    assert f"@Library('mlcd@{version}')" in shown
    assert set(re.findall(r"mlcd@([0-9][^')]*)", README)) == {version}


def test_the_configuration_shown_is_valid(tmp_path: Path) -> None:
    (config_block,) = _blocks("yaml")
    path = tmp_path / "mlcd.yaml"
    path.write_text(config_block, encoding="utf-8")
    config = load_config(path)
    assert [env.name for env in config.environments] == ["test", "prod"]
    assert config.environment("prod").approval is True


def test_exit_code_table_matches_the_code_and_the_cli_help() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, flags=re.M))
    assert sorted(int(code) for code in rows) == sorted(int(code) for code in ExitCode)
    for code, meaning in rows.items():
        assert f"  {code}  {meaning}" in EXIT_CODES_HELP


def test_every_command_is_documented_and_every_documented_command_exists() -> None:
    documented = set(re.findall(r"^\| `mlcd (\w+)", README, flags=re.M))
    assert documented == set(COMMANDS) | {"sim"}


@pytest.mark.parametrize(
    "line",
    [line for block in _blocks("") for line in block.splitlines() if line.startswith("mlcd ")]
    + re.findall(r"`(mlcd run [^`]+)`", README),
)
def test_cli_examples_parse(line: str) -> None:
    argv = shlex.split(line.split("#")[0])[1:]
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_every_step_named_exists_with_its_help() -> None:
    for step in set(re.findall(r"`(mlcd[A-Z]\w+)`", README)):
        assert (ROOT / "vars" / f"{step}.groovy").is_file(), step
        assert (ROOT / "vars" / f"{step}.txt").is_file(), step


def test_linked_docs_exist() -> None:
    for target in re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", README):
        assert (ROOT / target).exists(), target
