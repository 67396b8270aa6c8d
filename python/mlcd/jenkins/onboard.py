"""Onboarding a team: its folder and job on a controller (idempotent), and its Jenkinsfile and mlcd.yaml.

:func:`plan_onboarding` reads what exists (python-jenkins ``get_job_config``) and
decides, per item, ``create``, ``update`` (with a minimal diff) or ``unchanged``;
:func:`apply` carries that out (``create_folder``/``create_job``/``reconfig_job``) and
reads every written ``config.xml`` back. Before anything is written the plugins the
XML needs are checked, so a controller without workflow-multibranch gets one line
with the fix instead of a Java stack trace. Printed XML never shows a secret:
Jenkins' encrypted values (``{AQAAAB…}``) are masked and the API token is redacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

import jenkins
from mlcd.errors import InputError
from mlcd.jenkins import configxml as cx
from mlcd.jenkins.client import JenkinsError, JenkinsRefused, jenkins_call
from mlcd.redact import redact

_ENCRYPTED = re.compile(r">\{[A-Za-z0-9+/]{8,}={0,2}\}<")
NEEDED_PLUGINS = {
    "multibranch": ("cloudbees-folder", "workflow-multibranch", "git"),
    "pipeline": ("cloudbees-folder", "workflow-job", "git"),
}


@dataclass
class Change:
    """One item's decision: ``create``, ``update`` or ``unchanged``, its XML and the diff against Jenkins."""

    name: str
    action: str
    xml: etree._Element
    diff: list[str] = field(default_factory=list)
    is_folder: bool = False


def masked(text: str) -> str:
    """``text`` with Jenkins' encrypted secrets masked and registered secrets redacted."""
    return redact(_ENCRYPTED.sub(">********<", text))


def _current(server: jenkins.Jenkins, name: str) -> str | None:
    try:
        return str(server.get_job_config(name))
    except jenkins.NotFoundException:
        return None


def _decide(server: jenkins.Jenkins, name: str, desired: etree._Element, folder: bool) -> Change:
    current = jenkins_call(f"reading {name}/config.xml", lambda: _current(server, name))
    if current is None:
        return Change(name, "create", desired, cx.config_diff(None, desired, name), folder)
    if cx.parse(current).tag != desired.tag:
        raise InputError(
            f"{name} exists on the controller as another kind of item ({cx.parse(current).tag})",
            "rename or delete it, or choose another --folder/--job",
        )
    diff = cx.config_diff(current, desired, name)
    if not diff:
        return Change(name, "unchanged", desired, [], folder)
    return Change(name, "update", cx.merged(current, desired), diff, folder)


def plan_onboarding(server: jenkins.Jenkins, spec: cx.JobSpec) -> list[Change]:
    """The folder's and the job's decisions (nothing is written)."""
    job_name = f"{spec.folder}/{spec.job}"
    return [
        _decide(server, spec.folder, cx.folder_xml(spec), True),
        _decide(server, job_name, cx.job_xml(spec), False),
    ]


def check_plugins(server: jenkins.Jenkins, spec: cx.JobSpec) -> None:
    """Refuse, with the fix, when the controller lacks a plugin the XML needs (skipped if not allowed)."""
    try:
        plugins = jenkins_call("reading the plugin list", lambda: server.get_plugins(depth=1))
    except JenkinsRefused as exc:
        if "HTTP 403" in exc.message:
            return  # a user who may not read the plugin list: the create/update itself will say
        raise
    installed = {str(info.get("shortName")) for info in plugins.values() if info.get("active", True)}
    missing = [p for p in NEEDED_PLUGINS[spec.kind] if p not in installed]
    libs = {"pipeline-groovy-lib", "workflow-cps-global-lib"}
    if spec.library_scope == "folder" and not libs & installed:
        missing.append("pipeline-groovy-lib")
    if missing:
        kind = "a multibranch job" if spec.kind == "multibranch" else "a pipeline job"
        alt = "; or pass --kind pipeline" if "workflow-multibranch" in missing else ""
        raise JenkinsError(
            f"the controller lacks plugin(s) {', '.join(missing)} needed for {kind}",
            f"install {', '.join(missing)} (Manage Jenkins > Plugins){alt}",
        )


def _missing_class(exc: JenkinsError) -> JenkinsError:
    found = re.search(r"CannotResolveClassException: ([\w.$-]+)", exc.message)
    if not found:
        return exc
    plugin = cx.PLUGIN_OF_ROOT.get(found.group(1), "the plugin providing it")
    return JenkinsError(
        f"the controller does not know {found.group(1)}", f"install {plugin} (Manage Jenkins > Plugins)"
    )


def _write(server: jenkins.Jenkins, change: Change) -> None:
    if change.action == "update":
        server.reconfig_job(change.name, cx.to_text(change.xml))
    elif change.is_folder:  # python-jenkins creates an empty folder; mlcd's fields go in after
        server.create_folder(change.name)
        change.xml = cx.merged(str(server.get_job_config(change.name)), change.xml)
        server.reconfig_job(change.name, cx.to_text(change.xml))
    else:
        server.create_job(change.name, cx.to_text(change.xml))


def apply(server: jenkins.Jenkins, changes: list[Change]) -> None:
    """Create or update what ``changes`` say, then read each back (a controller that dropped it fails)."""
    for change in changes:
        if change.action == "unchanged":
            continue
        _apply_one(server, change)


def _apply_one(server: jenkins.Jenkins, change: Change) -> None:
    try:
        jenkins_call(f"{change.action} {change.name}", lambda: _write(server, change))
    except JenkinsError as exc:
        raise _missing_class(exc) from None
    back = jenkins_call(f"reading {change.name}/config.xml back", lambda: _current(server, change.name))
    if back is None or cx.config_diff(back, change.xml, change.name):
        raise JenkinsError(
            f"{change.name}: the controller did not keep the configuration mlcd wrote",
            "check the controller's log (a plugin may refuse a field) and run onboard again",
        )


# -- files for the team's repository ----------------------------------------------------------------
def jenkinsfile_text(version: str) -> str:
    """The team's two-line Jenkinsfile, pinned to the library version."""
    return f"@Library('mlcd@{version}') _\nmlcdPipeline()\n"


def starter_config(project: str) -> str:
    """A starter mlcd.yaml: one test and one approved prod environment, keys from environment variables."""
    low = project.lower()
    return (
        f"# mlcd configuration of {project} (see docs/configuration.md). Names environment variables\n"
        "# holding the API keys, never the keys: Jenkins binds them from credentials\n"
        f"# mlcd-{low}-design, mlcd-{low}-test and mlcd-{low}-prod.\n"
        f"project: {project}\n\n"
        "design:\n"
        "  url: https://dss-design.example.com:11200\n"
        "  api_key_env: DSS_DESIGN_API_KEY\n\n"
        "environments:\n"
        "  - name: test\n"
        "    url: https://dss-automation-test.example.com:11200\n"
        "    api_key_env: DSS_TEST_API_KEY\n"
        "    tests: {prefix: TEST_}\n"
        "  - name: prod\n"
        "    url: https://dss-automation-prod.example.com:11200\n"
        "    api_key_env: DSS_PROD_API_KEY\n"
        "    approval: true\n"
        "    tests: false\n"
    )


def write_checkout(checkout: Path, version: str, project: str) -> list[str]:
    """Write Jenkinsfile and mlcd.yaml into ``checkout`` (existing files are kept); a line per file."""
    if not checkout.is_dir():
        raise InputError(f"checkout {checkout} is not a directory", "pass the path of the team's clone")
    lines = []
    for name, text in (("Jenkinsfile", jenkinsfile_text(version)), ("mlcd.yaml", starter_config(project))):
        path = checkout / name
        if path.exists():
            same = path.read_text(encoding="utf-8", errors="replace") == text
            lines.append(f"{path}: {'unchanged' if same else 'exists, kept (not overwritten)'}")
            continue
        path.write_text(text, encoding="utf-8")
        lines.append(f"{path}: written")
    return lines
