"""The ``config.xml`` of a team's folder and job, built with lxml, and how it compares with Jenkins' copy.

Element and class names are those the plugins serialize (cloudbees-folder ``Folder``,
workflow-multibranch ``WorkflowMultiBranchProject``, workflow-job ``WorkflowJob``
(``flow-definition``), workflow-cps ``CpsScmFlowDefinition``, git ``GitSCMSource`` and
its traits, scm-api ``WildcardSCMHeadFilterTrait``, branch-api
``BuildRetentionBranchProperty``, pipeline-groovy-lib ``FolderLibraries``).

Jenkins may store a posted ``config.xml`` as it was sent or re-serialize it later
with every default field and ``plugin="name@version"`` attributes. So a job is
*unchanged* when the part of its current XML that mlcd manages equals what mlcd
would post: :func:`managed_view` keeps, of the current XML, only the elements the
desired XML has (in the containers of :data:`EXACT` every child, so an extra
trait or library shows), without ``plugin`` attributes; :func:`config_diff` is the
unified diff of the two, minimal for a changed option. What mlcd posts to an
existing item is :func:`merged`: Jenkins' XML with mlcd's top-level elements put
in place (and, in ``properties``, mlcd's properties), so that what mlcd does not
manage (views, folder credentials, health metrics) survives an update.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lxml import etree

MULTIBRANCH = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
PIPELINE = "flow-definition"
# root element -> the plugin that provides it (for "install the plugin" fixes)
PLUGIN_OF_ROOT = {MULTIBRANCH: "workflow-multibranch", FOLDER: "cloudbees-folder", PIPELINE: "workflow-job"}
# containers whose children mlcd owns completely
EXACT = ("traits", "libraries", "data")
MERGED = "properties"  # per child: mlcd's replace Jenkins' of the same tag, the others are kept


@dataclass(frozen=True)
class JobSpec:
    """What a team's folder and job are made from (the options of `mlcd jenkins onboard`)."""

    folder: str
    job: str
    repo_url: str
    kind: str = "multibranch"  # or "pipeline"
    scm_credentials_id: str | None = None
    library_version: str = "0.1.0"
    library_scope: str = "global"  # or "folder"
    library_repo: str | None = None
    library_credentials_id: str | None = None
    include: str = "*"  # branch-name wildcards (multibranch), e.g. "main release/* PR-*"
    exclude: str = ""
    tags: bool = False
    branch: str = "main"  # the one branch a pipeline job builds
    keep_builds: int = 30
    script_path: str = "Jenkinsfile"
    description: str = ""


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _log_rotator(parent: etree._Element, tag: str, keep: int) -> None:
    rotator = _sub(parent, tag, **{"class": "hudson.tasks.LogRotator"})
    for name, value in (("daysToKeep", -1), ("numToKeep", keep), ("artifactDaysToKeep", -1)):
        _sub(rotator, name, str(value))
    _sub(rotator, "artifactNumToKeep", "-1")


def folder_xml(spec: JobSpec) -> etree._Element:
    """The team folder; with ``library_scope == "folder"`` it holds the mlcd library, pinned."""
    root = etree.Element(FOLDER)
    _sub(root, "description", spec.description or f"mlcd: {spec.folder}")
    props = _sub(root, "properties")
    if spec.library_scope == "folder":
        libs = _sub(props, "org.jenkinsci.plugins.workflow.libs.FolderLibraries")
        lib_list = _sub(libs, "libraries")
        lib = _sub(lib_list, "org.jenkinsci.plugins.workflow.libs.LibraryConfiguration")
        _sub(lib, "name", "mlcd")
        retriever = _sub(
            lib, "retriever", **{"class": "org.jenkinsci.plugins.workflow.libs.SCMSourceRetriever"}
        )
        scm = _sub(retriever, "scm", **{"class": "jenkins.plugins.git.GitSCMSource"})
        _sub(scm, "remote", spec.library_repo or "")
        _sub(scm, "credentialsId", spec.library_credentials_id or "")
        _sub(lib, "defaultVersion", spec.library_version)
        _sub(lib, "implicit", "false")
        _sub(lib, "allowVersionOverride", "true")
        _sub(lib, "includeInChangesets", "false")
    return root


def _git_traits(source: etree._Element, spec: JobSpec) -> None:
    traits = _sub(source, "traits")
    _sub(traits, "jenkins.plugins.git.traits.BranchDiscoveryTrait")
    if spec.tags:
        _sub(traits, "jenkins.plugins.git.traits.TagDiscoveryTrait")
    wildcard = _sub(traits, "jenkins.scm.impl.trait.WildcardSCMHeadFilterTrait")
    _sub(wildcard, "includes", spec.include)
    _sub(wildcard, "excludes", spec.exclude)


def multibranch_xml(spec: JobSpec) -> etree._Element:
    """A multibranch job over one Git repository, discovering branches (and tags) by wildcard."""
    root = etree.Element(MULTIBRANCH)
    owner = {"class": MULTIBRANCH, "reference": "../.."}
    _sub(root, "description", spec.description or f"mlcd pipeline of {spec.folder}/{spec.job}")
    _sub(root, "properties")
    orphans = _sub(
        root,
        "orphanedItemStrategy",
        **{"class": "com.cloudbees.hudson.plugins.folder.computed.DefaultOrphanedItemStrategy"},
    )
    _sub(orphans, "pruneDeadBranches", "true")
    _sub(orphans, "daysToKeep", "-1")
    _sub(orphans, "numToKeep", "-1")
    sources = _sub(root, "sources", **{"class": "jenkins.branch.MultiBranchProject$BranchSourceList"})
    data = _sub(sources, "data")
    branch_source = _sub(data, "jenkins.branch.BranchSource")
    source = _sub(branch_source, "source", **{"class": "jenkins.plugins.git.GitSCMSource"})
    _sub(source, "id", f"mlcd-{spec.folder}-{spec.job}")
    _sub(source, "remote", spec.repo_url)
    _sub(source, "credentialsId", spec.scm_credentials_id or "")
    _git_traits(source, spec)
    strategy = _sub(branch_source, "strategy", **{"class": "jenkins.branch.DefaultBranchPropertyStrategy"})
    props = _sub(strategy, "properties", **{"class": "java.util.Arrays$ArrayList"})
    array = _sub(props, "a", **{"class": "jenkins.branch.BranchProperty-array"})
    retention = _sub(array, "jenkins.branch.BuildRetentionBranchProperty")
    _log_rotator(retention, "buildDiscarder", spec.keep_builds)
    _sub(sources, "owner", **owner)
    factory = _sub(
        root,
        "factory",
        **{"class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowBranchProjectFactory"},
    )
    _sub(factory, "owner", **owner)
    _sub(factory, "scriptPath", spec.script_path)
    return root


def pipeline_xml(spec: JobSpec) -> etree._Element:
    """A single-branch Pipeline job reading its Jenkinsfile from Git (lightweight checkout)."""
    root = etree.Element(PIPELINE)
    _sub(root, "description", spec.description or f"mlcd pipeline of {spec.folder}/{spec.job}")
    props = _sub(root, "properties")
    discard = _sub(props, "jenkins.model.BuildDiscarderProperty")
    _log_rotator(discard, "strategy", spec.keep_builds)
    definition = _sub(
        root, "definition", **{"class": "org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition"}
    )
    scm = _sub(definition, "scm", **{"class": "hudson.plugins.git.GitSCM"})
    _sub(scm, "configVersion", "2")
    remotes = _sub(scm, "userRemoteConfigs")
    remote = _sub(remotes, "hudson.plugins.git.UserRemoteConfig")
    _sub(remote, "url", spec.repo_url)
    _sub(remote, "credentialsId", spec.scm_credentials_id or "")
    branches = _sub(scm, "branches")
    branch = _sub(branches, "hudson.plugins.git.BranchSpec")
    _sub(branch, "name", f"*/{spec.branch}")
    _sub(definition, "scriptPath", spec.script_path)
    _sub(definition, "lightweight", "true")
    _sub(root, "disabled", "false")
    return root


def job_xml(spec: JobSpec) -> etree._Element:
    """The job's XML for ``spec.kind``."""
    return multibranch_xml(spec) if spec.kind == "multibranch" else pipeline_xml(spec)


def to_text(root: etree._Element) -> str:
    """The XML as Jenkins expects it posted (XML 1.1 declaration as Jenkins writes it is not needed)."""
    body = etree.tostring(root, pretty_print=True, encoding="unicode")
    return "<?xml version='1.0' encoding='UTF-8'?>\n" + body


def parse(text: str) -> etree._Element:
    """Parse a ``config.xml`` (no network, no entities)."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    if data.lstrip().startswith(b"<?xml"):
        data = data.split(b"?>", 1)[1]
    return etree.fromstring(data, parser)


def _clean(el: etree._Element) -> etree._Element:
    copy = etree.Element(el.tag, {str(k): str(v) for k, v in el.attrib.items() if k != "plugin"})
    copy.text = (el.text or "").strip() or None
    return copy


def _project(current: etree._Element, desired: etree._Element) -> etree._Element:
    out = _clean(current)
    exact = current.tag in EXACT
    used: set[int] = set()
    for want in desired:
        match = next(
            (i for i, c in enumerate(current) if i not in used and c.tag == want.tag),
            None,
        )
        if match is not None:
            used.add(match)
            out.append(_project(current[match], want))
    if exact:
        out.extend(_project(c, c) for i, c in enumerate(current) if i not in used)
    return out


def managed_view(current: etree._Element, desired: etree._Element) -> etree._Element:
    """The part of ``current`` that mlcd manages (see the module doc); the root is always kept."""
    return _project(current, desired) if current.tag == desired.tag else _clean(current)


def _pretty(el: etree._Element) -> list[str]:
    clean = _project(el, el)
    return etree.tostring(clean, pretty_print=True, encoding="unicode").splitlines()


def config_diff(current_text: str | None, desired: etree._Element, name: str) -> list[str]:
    """Unified diff lines of the managed part of the current config (or nothing) and the desired one."""
    want = _pretty(desired)
    have = [] if current_text is None else _pretty(managed_view(parse(current_text), desired))
    return list(difflib.unified_diff(have, want, f"{name} (Jenkins)", f"{name} (mlcd)", lineterm="", n=2))


def _child(el: etree._Element, tag: str) -> etree._Element | None:
    return next((c for c in el if c.tag == tag), None)


def merged(current_text: str, desired: etree._Element) -> etree._Element:
    """``current`` with each of ``desired``'s top-level elements replacing the one of the same tag.

    In ``properties`` the replacement is per property, so Jenkins' other properties
    (e.g. folder credentials) are kept. A root of another kind is replaced whole.
    """
    current = parse(current_text)
    if current.tag != desired.tag:
        return desired
    out = etree.fromstring(etree.tostring(current))
    for want in desired:
        have = _child(out, want.tag)
        if want.tag == MERGED and have is not None:
            for prop in want:
                old = _child(have, prop.tag)
                new = etree.fromstring(etree.tostring(prop))
                if old is None:
                    have.append(new)
                else:
                    have.replace(old, new)
            continue
        new = etree.fromstring(etree.tostring(want))
        if have is None:
            out.append(new)
        else:
            out.replace(have, new)
    return out
