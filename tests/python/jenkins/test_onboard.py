"""`mlcd jenkins onboard` against the Jenkins stand-in, through python-jenkins over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcd.cli import main
from support.jenkins_server import JenkinsStandIn

TOKEN = "11aa22bb33cc44dd55ee66ff77"
USERS = {"platform": TOKEN}


@pytest.fixture(params=["verbatim", "reserialized"])
def jk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[JenkinsStandIn]:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    with JenkinsStandIn.start(USERS, store=request.param) as server:
        yield server


def onboard(jk: JenkinsStandIn, tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "jenkins",
            "onboard",
            "--jenkins-url",
            jk.url,
            "--out-dir",
            str(tmp_path / ".mlcd"),
            "--folder",
            "churn-team",
            "--job",
            "churn",
            "--repo",
            "https://git.example.com/churn.git",
            "--scm-credentials",
            "git-readonly",
            "--library-version",
            "1.4.0",
            *extra,
        ]
    )


def test_onboarding_twice_changes_nothing_the_second_time(
    jk: JenkinsStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert onboard(jk, tmp_path) == 0
    first = capsys.readouterr().out
    assert "churn-team: create" in first and "churn-team/churn: create" in first
    assert jk.items["churn-team"].kind == "folder"
    assert jk.items["churn-team/churn"].kind == "multibranch"
    assert "<remote>https://git.example.com/churn.git</remote>" in jk.items["churn-team/churn"].xml
    posts = len(jk.posts())

    assert onboard(jk, tmp_path) == 0
    second = capsys.readouterr().out
    assert "churn-team: unchanged" in second and "churn-team/churn: unchanged" in second
    assert len(jk.posts()) == posts  # nothing written the second time
    stage = json.loads((tmp_path / ".mlcd" / "jenkins.json").read_text())
    assert stage["outcome"] == "NOOP"
    assert TOKEN not in first + second


def test_a_changed_option_shows_a_minimal_diff_and_dry_run_writes_nothing(
    jk: JenkinsStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert onboard(jk, tmp_path) == 0
    capsys.readouterr()
    posts = len(jk.posts())
    assert onboard(jk, tmp_path, "--keep-builds", "5", "--dry-run") == 0
    out = capsys.readouterr().out
    diff = [line for line in out.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert diff == [
        "-                  <numToKeep>30</numToKeep>",
        "+                  <numToKeep>5</numToKeep>",
    ]
    assert "<?xml" in out  # the XML it would post
    assert len(jk.posts()) == posts

    assert onboard(jk, tmp_path, "--keep-builds", "5") == 0
    assert "churn-team/churn: update" in capsys.readouterr().out
    assert "<numToKeep>5</numToKeep>" in jk.items["churn-team/churn"].xml


def test_update_keeps_what_mlcd_does_not_manage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    with JenkinsStandIn.start(USERS) as jk:
        assert onboard(jk, tmp_path) == 0
        creds = (
            "<com.cloudbees.hudson.plugins.folder.properties.FolderCredentialsProvider_-FolderCredentialsProperty>"
            "<secret>{AQAAABAAAAAQx1y2z3}</secret>"
            "</com.cloudbees.hudson.plugins.folder.properties.FolderCredentialsProvider_-FolderCredentialsProperty>"
        )
        jk.items["churn-team"].xml = jk.items["churn-team"].xml.replace(
            "<properties/>", f"<properties>{creds}</properties>"
        )
        assert (
            onboard(jk, tmp_path, "--library-scope", "folder", "--library-repo", "https://git/mlcd.git") == 0
        )
        folder = jk.items["churn-team"].xml
        assert "FolderCredentialsProperty" in folder  # the team's folder credentials survive
        assert "<defaultVersion>1.4.0</defaultVersion>" in folder


def test_dry_run_never_prints_an_encrypted_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    with JenkinsStandIn.start(USERS) as jk:
        assert onboard(jk, tmp_path) == 0
        xml = jk.items["churn-team/churn"].xml
        jk.items["churn-team/churn"].xml = xml.replace(
            "<jenkins.plugins.git.traits.BranchDiscoveryTrait/>",
            "<x.SecretTrait><token>{AQAAABAAAAAQsecretsecret}</token></x.SecretTrait>",
        )
        capsys.readouterr()
        assert onboard(jk, tmp_path, "--dry-run") == 0
        out = capsys.readouterr().out
    assert "x.SecretTrait" in out  # the unmanaged trait shows in the diff...
    assert "AQAAABAAAAAQsecretsecret" not in out  # ...without its value


@pytest.mark.parametrize("csrf", [True, False])
def test_crumb_is_sent_when_the_controller_issues_one(
    csrf: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    with JenkinsStandIn.start(USERS, csrf=csrf) as jk:
        assert onboard(jk, tmp_path, "--kind", "pipeline") == 0
        assert jk.items["churn-team/churn"].kind == "pipeline"
        assert ("GET", "/crumbIssuer/api/json") in jk.requests


def test_refused_token_is_one_line_exit_6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", "wrong-token-value-123")
    with JenkinsStandIn.start(USERS) as jk:
        assert onboard(jk, tmp_path) == 6
        assert not jk.posts()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("mlcd jenkins: error: ") and "(HTTP 401)" in err[0] and "(fix: " in err[0]
    assert "wrong-token-value-123" not in err[0]


def test_controller_without_multibranch_plugin_gives_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    plugins = {"cloudbees-folder": "6.9", "workflow-job": "1.0", "git": "5.0"}
    with JenkinsStandIn.start(USERS, plugins=plugins) as jk:
        assert onboard(jk, tmp_path) == 2
        assert not jk.posts()  # refused before anything was created: nothing half-done
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "mlcd jenkins: error: the controller lacks plugin(s) workflow-multibranch needed for a "
        "multibranch job "
        "(fix: install workflow-multibranch (Manage Jenkins > Plugins); or pass --kind pipeline)"
    ]


def test_writes_the_two_line_jenkinsfile_and_a_starter_config(jk: JenkinsStandIn, tmp_path: Path) -> None:
    checkout = tmp_path / "repo"
    checkout.mkdir()
    assert onboard(jk, tmp_path, "--checkout", str(checkout), "--project", "CHURN") == 0
    assert (checkout / "Jenkinsfile").read_text() == "@Library('mlcd@1.4.0') _\nmlcdPipeline()\n"
    from mlcd.config import load_config

    assert load_config(checkout / "mlcd.yaml").project == "CHURN"
    (checkout / "mlcd.yaml").write_text("project: MINE\n")
    assert onboard(jk, tmp_path, "--checkout", str(checkout), "--project", "CHURN") == 0
    assert (checkout / "mlcd.yaml").read_text() == "project: MINE\n"  # a team's file is never overwritten


def test_a_controller_error_echoing_the_token_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 500 page that quotes the request's token: the error line and stage file show it masked."""
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    with JenkinsStandIn.start(USERS, create_error=f"Exception: bad request with token {TOKEN}") as jk:
        assert onboard(jk, tmp_path) == 2
    err = capsys.readouterr().err
    stage = (tmp_path / ".mlcd" / "jenkins.json").read_text()
    assert "***" in err and TOKEN not in err and TOKEN not in stage


def test_an_oversized_answer_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    monkeypatch.setenv("MLCD_MAX_JSON_BYTES", "4096")
    with JenkinsStandIn.start(USERS) as jk:
        jk.add_item(
            "big",
            "pipeline",
            "<flow-definition><description>" + "x" * 10_000 + "</description></flow-definition>",
        )
        jk.add_build("big", 1, description="y" * 10_000)
        code = main(
            ["jenkins", "report", "--jenkins-url", jk.url, "--job", "big", "--out-dir", str(tmp_path)]
        )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than the 4096 bytes allowed" in err[0]


def test_missing_plugin_named_from_the_controllers_error_when_the_plugin_list_is_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JENKINS_USER", "platform")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    plugins = {"cloudbees-folder": "6.9", "workflow-job": "1.0", "git": "5.0"}
    with JenkinsStandIn.start(USERS, plugins=plugins, plugins_readable=False) as jk:
        assert onboard(jk, tmp_path) == 2
        assert "churn-team/churn" not in jk.items
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "mlcd jenkins: error: the controller does not know "
        "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject "
        "(fix: install workflow-multibranch (Manage Jenkins > Plugins))"
    ]
