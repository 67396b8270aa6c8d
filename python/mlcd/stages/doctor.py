"""`mlcd doctor [--env E]`: check, read-only, what mlcd assumes about each DSS node before a first deploy.

Per node: reachable over TLS, API prefix, the key, node type, DSS version; on
the design node the project and the test/smoke scenarios; on each automation
node the project (by listing), the project settings and where connection
remappings live in them, whether the key may list connections, and that every
remapping target exists. Only GET requests are sent. Output: a table on stdout,
``reports/doctor.xml`` (JUnit) and the stage file. Exit 0 when every check
passes, 6 for connectivity or key problems, 2 for configuration problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from mlcd.commands.context import StageContext
from mlcd.commands.result import StageResult
from mlcd.dss.answers import REMAPPING_KEY
from mlcd.dss.errors import DSSError, DSSForbidden, DSSUnauthorized
from mlcd.errors import ConfigError, MlcdError, NodeError
from mlcd.stages.status import table

KEY_FIX = "check the API key in the environment variable named in mlcd.yaml"


@dataclass
class Check:
    """One verdict: ``kind`` is "node" (exit 6) or "config" (exit 2) when it fails."""

    node: str
    name: str
    ok: bool
    verdict: str
    fix: str = ""
    kind: str = "config"


class Doctor:
    """Collects checks; a failing node check stops that node's later checks."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def add(self, node: str, name: str, ok: bool, verdict: str, fix: str = "", kind: str = "config") -> bool:
        self.checks.append(Check(node, name, ok, verdict, fix, kind))
        return ok

    def reach(self, node: Any, label: str, role: str) -> dict[str, Any] | None:
        """Connectivity, TLS, prefix, key and node type; the instance info, or None if unusable."""
        try:
            info = node.instance_info()
        except DSSUnauthorized:
            self.add(label, "API key", False, "refused (HTTP 401)", KEY_FIX, "node")
            return None
        except DSSError as exc:
            self.add(label, "connectivity and TLS", False, exc.dss_message or exc.one_line(),
                     exc.hint or "check the url and TLS settings in mlcd.yaml", "node")  # fmt: skip
            return None
        self.add(label, "connectivity, TLS and API prefix", True, f"{node.url}/public/api/ answers")
        try:
            who = node.auth_info()
        except DSSError as exc:
            self.add(label, "API key", False, exc.dss_message, KEY_FIX, "node")
            return None
        self.add(label, "API key", True, f"accepted ({who.get('authIdentifier', '?')})")
        kind = str(info.get("nodeType") or "?")
        self.add(label, "node type", kind == role, kind, f"point {label}'s url at a {role} node")
        self.add(label, "DSS version", True, str(info.get("dssVersion") or "not reported"))
        return dict(info)

    def guard(self, label: str, name: str, fn: Callable[[], tuple[bool, str, str]]) -> None:
        """Run one check; a DSS error is that check's failure."""
        try:
            ok, verdict, fix = fn()
        except DSSError as exc:
            ok, verdict, fix = False, exc.one_line(), exc.hint or ""
        self.add(label, name, ok, verdict, fix)


def _design(doc: Doctor, ctx: StageContext) -> None:
    cfg = ctx.config()
    node = ctx.design_node()
    if doc.reach(node, "design", "DESIGN") is None:
        return
    key = cfg.project
    if not doc.add("design", "project exists", node.project_exists(key), key,
                   "fix 'project' in mlcd.yaml"):  # fmt: skip
        return
    ids = {str(s.get("id")) for s in node.list_scenarios(key)}
    for env in _envs(ctx):
        wanted = [*env.tests.select(sorted(ids), env.smoke), *env.smoke]
        missing = [s for s in dict.fromkeys(wanted) if s not in ids]
        doc.add("design", f"test and smoke scenarios of {env.name}", not missing,
                "missing: " + ", ".join(missing) if missing else f"{len(wanted)} found",
                f"fix tests/smoke of {env.name} in mlcd.yaml")  # fmt: skip


def _settings(node: Any, key: str) -> tuple[bool, str, str]:
    settings = node.get_project_settings(key)
    container = settings.get("bundleContainerSettings")
    if isinstance(container, dict) and isinstance(container.get("remapping"), dict):
        return True, f"{REMAPPING_KEY}: present", ""
    return True, f"{REMAPPING_KEY}: absent (where DSS keeps remappings is unknown)", ""


def _automation(doc: Doctor, ctx: StageContext, env: Any) -> None:
    if env.nodes:  # a multi-node environment: not checked yet (only its first node would be)
        ctx.progress(f"{env.name}: several nodes; doctor does not check multi-node environments yet")
        return
    node = ctx.env_node(env.name)
    label = env.name
    if doc.reach(node, label, "AUTOMATION") is None:
        return
    key = ctx.config().project
    exists = node.project_exists(key)
    doc.add(label, "project", True, "exists" if exists else "absent (the first deploy creates it)")
    if exists:
        doc.guard(label, "project settings and remapping key", lambda: _settings(node, key))
    if exists and not env.settings.empty:
        doc.guard(label, "configuration drift from mlcd.yaml", lambda: _drift(node, key, env))
    try:
        names: set[str] | None = set(node.list_connections())
        doc.add(label, "key may list connections", True, "yes")
    except DSSForbidden as exc:
        names = None
        doc.add(label, "key may list connections", True,
                f"no (HTTP {exc.status}): deploy skips its connection pre-check")  # fmt: skip
    targets = sorted(set(env.connection_remappings.values()))
    if names is None:
        doc.add(label, "remapping targets exist", True, "unknown (connections not listable)")
    else:
        missing = [t for t in targets if t not in names]
        doc.add(label, "remapping targets exist", not missing,
                "missing: " + ", ".join(missing) if missing else f"{len(targets)} found",
                f"create them on the node or fix connection_remappings of {env.name}")  # fmt: skip


def _drift(node: Any, key: str, env: Any) -> tuple[bool, str, str]:
    """Local variables, scenario states and code-env remappings on the node against mlcd.yaml."""
    from mlcd.release.envapply import drift
    from mlcd.release.target import AutomationNodeTarget

    found = drift(AutomationNodeTarget(node, key, env.name), env.settings, env.name)
    if not found:
        return True, "none", ""
    what = "; ".join(f"{c.kind} {c.name}: node has {c.before}, mlcd.yaml says {c.after}" for c in found)
    return (
        False,
        f"{len(found)} difference(s): {what}",
        (f"deploy to {env.name} to put mlcd.yaml's values back, or change mlcd.yaml to what the node has"),
    )


def _envs(ctx: StageContext) -> list[Any]:
    if ctx.env_name:
        return [ctx.environment()]
    return list(ctx.config().environments)


def _write_junit(ctx: StageContext, checks: list[Check]) -> str:
    suite = etree.Element("testsuite", name="mlcd doctor", tests=str(len(checks)),
                          failures=str(sum(not c.ok for c in checks)))  # fmt: skip
    for c in checks:
        case = etree.SubElement(suite, "testcase", classname=f"doctor.{c.node}", name=c.name)
        if not c.ok:
            failure = etree.SubElement(case, "failure", message=c.verdict)
            failure.text = f"{c.verdict} (fix: {c.fix})" if c.fix else c.verdict
    path = ctx.out_dir / "reports" / "doctor.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    etree.ElementTree(suite).write(str(path), xml_declaration=True, encoding="utf-8", pretty_print=True)
    return str(path)


def run(ctx: StageContext) -> StageResult:
    """Check every node (or the design node and ``--env``); change nothing."""
    doc = Doctor()
    _design(doc, ctx)
    for env in _envs(ctx):
        _automation(doc, ctx, env)
        if env.deployer is not None:
            from mlcd.stages.doctor_deployer import check_deployer

            check_deployer(doc, ctx, env)
    rows = [[c.node, c.name, "ok" if c.ok else "FAIL", c.verdict + (f" (fix: {c.fix})" if not c.ok and c.fix
             else "")] for c in doc.checks]  # fmt: skip
    print("\n".join(table(["node", "check", "result", "verdict"], rows)), flush=True)
    report = _write_junit(ctx, doc.checks)
    details = {"checks": [c.__dict__ for c in doc.checks], "reports": [report]}
    failed = [c for c in doc.checks if not c.ok]
    if failed:
        first = failed[0]
        text = f"{len(failed)} check(s) failed; first: {first.node}: {first.name}: {first.verdict}"
        kind = NodeError if any(c.kind == "node" for c in failed) else ConfigError
        err: MlcdError = kind(text, first.fix)
        err.details = details
        raise err
    return StageResult("SUCCESS", f"{len(doc.checks)} checks passed", reports=[report], details=details)
