"""`mlcd jenkins lint`: declarative files by the controller's linter, mlcdPipeline(...) by mlcd's rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlcd.cli import main
from mlcd.jenkins.lint import pipeline_args
from support.jenkins_server import JenkinsStandIn

REPO = Path(__file__).resolve().parents[3]
CONFIG = """project: CHURN
design: {url: https://design.example.com, api_key_env: K_DESIGN}
environments:
  - {name: test, url: https://test.example.com, api_key_env: K_TEST}
  - {name: prod, url: https://prod.example.com, api_key_env: K_PROD, approval: true}
"""


def test_argument_rules_are_the_groovy_steps() -> None:
    """schema/pipeline-args.json and vars/mlcdPipeline.groovy name the same arguments (one rule)."""
    groovy = (REPO / "vars" / "mlcdPipeline.groovy").read_text()
    keys = re.search(r"List<String> KEYS = \[(.*?)\]", groovy, re.S)
    timeouts = re.search(r"Map<String, Integer> TIMEOUTS = \[(.*?)\]", groovy, re.S)
    assert keys and timeouts
    assert re.findall(r"'(\w+)'", keys.group(1)) == pipeline_args()["keys"]
    assert re.findall(r"(\w+):", timeouts.group(1)) == pipeline_args()["timeouts"]
    assert "['design', 'artifacts']" in groovy and pipeline_args()["credentialTargets"] == [
        "design",
        "artifacts",
    ]


def lint(tmp_path: Path, jenkinsfile: str, *extra: str) -> int:
    (tmp_path / "mlcd.yaml").write_text(CONFIG)
    (tmp_path / "Jenkinsfile").write_text(jenkinsfile)
    return main(["jenkins", "lint", "--jenkinsfile", str(tmp_path / "Jenkinsfile"),
                 "--out-dir", str(tmp_path / ".mlcd"), *extra])  # fmt: skip


def test_two_line_form_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "@Library('mlcd@1.4.0') _\nmlcdPipeline(submitter: 'release-managers', timeouts: [deploy: 90])\n"
    assert lint(tmp_path, text) == 0
    assert "no problem found by mlcd's rules for mlcdPipeline" in capsys.readouterr().out


def test_two_line_form_problems_in_the_groovy_steps_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "@Library('mlcd@1.4.0') _\n"
        "mlcdPipeline(agentlabel: 'linux', timeouts: [deplyo: 5], credentials: [qa: 'x'])\n"
    )
    assert lint(tmp_path, text) == 2
    captured = capsys.readouterr()
    lines = [line.split(": ", 1)[1] for line in captured.out.splitlines() if line.startswith(str(tmp_path))]
    assert lines[0].startswith("mlcdPipeline: unknown argument 'agentlabel' (did you mean 'agentLabel'?)")
    assert lines[1].startswith("mlcdPipeline timeouts: unknown argument 'deplyo' (did you mean 'deploy'?)")
    assert lines[2].startswith("mlcdPipeline credentials: unknown argument 'qa'")
    assert lines[3].startswith("mlcdPipeline: prod needs approval but no submitter is given")
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "4 problem(s) found by mlcd's rules" in err[0]


def test_declarative_file_goes_to_the_controllers_linter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JENKINS_USER", "u")
    monkeypatch.setenv("JENKINS_API_TOKEN", "token-0123456789")
    with JenkinsStandIn.start({"u": "token-0123456789"}) as jk:
        good = "pipeline {\n  agent any\n  stages { stage('a') { steps { echo 'x' } } }\n}\n"
        assert lint(tmp_path, good, "--jenkins-url", jk.url) == 0
        assert lint(tmp_path, good.replace("}\n}", "}\n"), "--jenkins-url", jk.url) == 2
        assert ("POST", "/pipeline-model-converter/validateJenkinsfile") in jk.requests
    out = capsys.readouterr().out
    assert "braces do not balance" in out
