"""`mlcd jenkins lint`: declarative files by the controller's linter, `mlcdPipeline(...)` by mlcd's rules.

The controller's linter (python-jenkins ``check_jenkinsfile_syntax``,
pipeline-model-definition's ``validateJenkinsfile``) refuses a Jenkinsfile without a
``pipeline {}`` block, which is what the two-line ``mlcdPipeline(...)`` form is. For
that form the call's named arguments are checked by the rules the Groovy step
applies (argument names and ``timeouts`` keys from ``schema/pipeline-args.json``,
kept equal to ``vars/mlcdPipeline.groovy`` by a test; ``credentials`` targets and
the approvers an environment with ``approval: true`` needs, from the referenced
mlcd.yaml, which is validated too). Needs no controller for that form.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from mlcd.commands.context import StageContext
from mlcd.commands.options import JenkinsOptions
from mlcd.commands.result import StageResult
from mlcd.errors import InputError, MlcdError

_CALL = re.compile(r"^\s*mlcdPipeline\s*(\(|$)", re.M)
_PIPELINE = re.compile(r"^\s*pipeline\s*\{", re.M)
_LIBRARY = re.compile(r"@Library\(\s*['\"]mlcd(@[^'\"]*)?['\"]\s*\)")
_STRING = re.compile(r"^\s*(['\"])(.*)\1\s*$", re.S)


class LintFailed(InputError):
    """The Jenkinsfile has problems (each printed on its own line)."""

    category = "lint"


def pipeline_args() -> dict[str, Any]:
    """The mlcdPipeline argument rules (``schema/pipeline-args.json``)."""
    text = resources.files("mlcd").joinpath("schema/pipeline-args.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (as StepArgs.editDistance computes it)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(current[j - 1] + 1, previous[j] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def unknown_key(step: str, keys: list[str], valid: list[str]) -> str | None:
    """StepArgs.unknownKey: the first unknown key, the closest valid one and every valid one."""
    for key in keys:
        if key not in valid:
            near = min(valid, key=lambda v: edit_distance(key.lower(), v.lower()))
            valid_list = ", ".join(valid)
            return f"{step}: unknown argument '{key}' (did you mean '{near}'?); valid arguments: {valid_list}"
    return None


def _split_top(text: str) -> list[str]:
    """``text`` split on commas outside brackets, parentheses, braces and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote and text[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def named_args(text: str) -> dict[str, str]:
    """Groovy named arguments ``a: 1, b: [x: 'y']`` as ``{name: value text}`` (a positional one is ``""``)."""
    out = {}
    for part in _split_top(text):
        name, sep, value = part.partition(":")
        if not sep or not re.fullmatch(r"\s*['\"]?\w+['\"]?\s*", name):
            raise LintFailed(f"cannot read argument '{part[:60]}'", "give mlcdPipeline named arguments only")
        out[name.strip().strip("'\"")] = value.strip()
    return out


def _map_keys(value: str) -> list[str] | None:
    inner = value.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        return None
    body = inner[1:-1].strip()
    return [] if body in ("", ":") else list(named_args(body))


def _call_args(text: str) -> dict[str, str]:
    found = _CALL.search(text)
    assert found is not None
    if found.group(1) != "(":
        return {}
    depth, start = 0, found.end() - 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return named_args(text[start + 1 : i])
    raise LintFailed("mlcdPipeline( has no closing parenthesis", "close the call")


def _string(value: str | None) -> str | None:
    found = _STRING.match(value or "")
    return found.group(2) if found else None


def _config_problems(args: dict[str, str], base: Path, rules: dict[str, Any]) -> list[str]:
    from mlcd.config import load_config

    step = rules["step"]
    path = base / (_string(args.get("config")) or "mlcd.yaml")
    try:
        cfg = load_config(path)
    except MlcdError as exc:
        return [f"{step}: {path.name}: {exc.one_line()}"]
    envs = [e.name for e in cfg.environments]
    problems = []
    creds = _map_keys(args.get("credentials", "[:]"))
    bad = unknown_key(f"{step} credentials", creds or [], rules["credentialTargets"] + envs)
    if bad:
        problems.append(bad)
    approvers = args.get("submitter") not in (None, "null", "''", '""')
    anyone = args.get("allowAnyApprover") == "true"
    for env in cfg.environments:
        if env.approval and not approvers and not anyone:
            problems.append(
                f"{step}: {env.name} needs approval but no submitter is given (fix: submitter: "
                f"'release-managers' or [{env.name}: '...'], or allowAnyApprover: true)"
            )
    return problems


def mlcd_pipeline_problems(text: str, base: Path) -> list[str]:
    """Problems of a two-line ``mlcdPipeline(...)`` Jenkinsfile, in the Groovy step's words."""
    rules = pipeline_args()
    step = rules["step"]
    problems = []
    if not _LIBRARY.search(text):
        problems.append("no @Library('mlcd@<version>') _ line (fix: pin the library version)")
    args = _call_args(text)
    bad = unknown_key(step, list(args), rules["keys"])
    if bad:
        problems.append(bad)
    timeouts = _map_keys(args.get("timeouts", "[:]"))
    bad = unknown_key(f"{step} timeouts", timeouts or [], rules["timeouts"])
    if bad:
        problems.append(bad)
    return problems + _config_problems(args, base, rules)


def _controller_problems(ctx: StageContext, o: JenkinsOptions, text: str) -> list[str]:
    from mlcd.jenkins.client import connect, jenkins_call

    server = connect(o.jenkins_url, o.user_env, o.token_env)
    errors = jenkins_call("validating the Jenkinsfile", lambda: server.check_jenkinsfile_syntax(text))
    out = []
    for error in errors or []:
        if isinstance(error, dict):
            where = f"line {error['line']}: " if error.get("line") else ""
            out.append(f"{where}{error.get('error', error)}")
        else:
            out.append(str(error))
    return out


def lint_jenkinsfile(ctx: StageContext, o: JenkinsOptions) -> StageResult:
    """Lint ``--jenkinsfile``; every problem on its own line, then exit 2 if there is one."""
    path = Path(o.jenkinsfile)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}", "pass --jenkinsfile PATH") from None
    if _CALL.search(text) and not _PIPELINE.search(text):
        how, problems = "mlcd's rules for mlcdPipeline", mlcd_pipeline_problems(text, path.parent)
    else:
        how, problems = "the controller's declarative linter", _controller_problems(ctx, o, text)
    for problem in problems:
        print(f"{path}: {problem}")
    if problems:
        raise LintFailed(
            f"{path}: {len(problems)} problem(s) found by {how}", "correct the lines printed above"
        )
    return StageResult(
        outcome="SUCCESS", message=f"{path}: no problem found by {how}", details={"checkedBy": how}
    )
