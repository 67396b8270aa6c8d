"""`mlcd validate`: is the project on the design node ready to be released?

Checks, one JUnit testcase each (``reports/validate.xml``): the API key is
accepted, the node is a DESIGN node, the project exists, the bundle id format
renders to a valid id, and per environment: its test scenarios exist (per its
``tests`` selection), its smoke and flaky scenarios exist, and its connection
remappings look sane. Failed checks raise GateFailed (exit 3) after the XML is
written; an unreachable node or refused key raises the client's typed error
(exit 6), also after writing the XML.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcd import gitinfo
from mlcd.commands.context import StageContext
from mlcd.commands.result import StageResult
from mlcd.errors import GateFailed, MlcdError, NodeError
from mlcd.reports import CaseResult, write_junit

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class _CheckFailed(Exception):
    pass


class _Checks:
    def __init__(self, emit: Callable[[str], None]) -> None:
        self.cases: list[CaseResult] = []
        self.emit = emit

    def run(self, name: str, fn: Callable[[], str]) -> bool:
        start = time.monotonic()
        try:
            detail = fn()
        except _CheckFailed as exc:
            self.add(name, False, time.monotonic() - start, str(exc))
            return False
        except MlcdError as exc:  # node unreachable, key refused, DSS failing: stop after recording it
            kind = "NodeError" if isinstance(exc, NodeError) else "DSSError"
            self.add(name, False, time.monotonic() - start, exc.one_line(), error_type=kind)
            raise
        self.add(name, True, time.monotonic() - start, detail)
        return True

    def add(self, name: str, ok: bool, duration: float, text: str, error_type: str = "CheckFailed") -> None:
        self.cases.append(
            CaseResult(
                scenario_id=name,
                outcome="SUCCESS" if ok else "FAILED",
                passed=ok,
                duration_s=duration,
                run_id=None,
                failing_step=None,
                error_type=None if ok else error_type,
                error_message=None if ok else text,
                log_excerpt=text,
            )
        )
        self.emit(f"{'ok  ' if ok else 'FAIL'} {name}: {text}")


def run(ctx: StageContext) -> StageResult:
    """Run every release check on the design node; write reports/validate.xml."""
    from mlcd.stages.bundle import render_bundle_id

    cfg = ctx.config()
    key = cfg.project
    report = ctx.out_dir / "reports" / "validate.xml"
    checks = _Checks(ctx.progress)
    state: dict[str, Any] = {}
    audit = ctx.audit()

    def write() -> None:
        write_junit(
            report,
            suite_name=f"validate {key}",
            classname=f"mlcd.validate.{key}",
            cases=checks.cases,
            properties={"project": key, "designNode": cfg.design.url},
        )

    ctx.progress(f"checking project {key} on the design node {cfg.design.url}")
    with audit.action("validate", node="design") as detail:
        try:
            node = ctx.design_node()

            def key_accepted() -> str:
                info = node.auth_info()
                return f"API key accepted (identity {info.get('authIdentifier', '?')})"

            def design_type() -> str:
                info = node.instance_info()
                kind = str(info.get("nodeType") or "").upper()
                if kind and kind != "DESIGN":
                    raise _CheckFailed(
                        f"{cfg.design.url} is a {kind} node, not a DESIGN node: bundles are exported "
                        "from the design node (fix design.url in mlcd.yaml)"
                    )
                return f"node {info.get('nodeName', '?')} is a {kind or 'DSS'} node"

            def project_exists() -> str:
                if not node.project_exists(key):
                    keys = sorted(str(p.get("projectKey")) for p in node.list_projects())
                    shown = ", ".join(keys[:10]) or "none"
                    raise _CheckFailed(
                        f"project {key} does not exist on the design node (projects there: {shown}); "
                        "fix 'project' in mlcd.yaml"
                    )
                state["scenarios"] = {str(s.get("id")): s for s in node.list_scenarios(key)}
                return f"project {key} exists with {len(state['scenarios'])} scenarios"

            def id_format() -> str:
                # the id `mlcd bundle` would give now, from this checkout (not a made-up sha and build)
                sha = gitinfo.short_sha(Path(ctx.options.config).resolve().parent)
                build = os.environ.get("BUILD_NUMBER") or "local"
                try:
                    sample = render_bundle_id(cfg.bundle.id_format, key, git_sha=sha, build=build)
                except MlcdError as exc:
                    raise _CheckFailed(exc.one_line()) from None
                return f"the next bundle id would be like {sample}"

            checks.run("design node: API key accepted", key_accepted)
            checks.run("design node: is a DESIGN node", design_type)
            has_project = checks.run(f"project {key} exists", project_exists)
            checks.run("bundle id format", id_format)
            if has_project:
                _environment_checks(ctx, checks, state["scenarios"], node)
        except MlcdError:
            write()
            raise
        write()
        failed = [c for c in checks.cases if not c.passed]
        detail.update(checks=len(checks.cases), failed=[c.scenario_id for c in failed])
        if failed:
            exc = GateFailed(
                f"{len(failed)} of {len(checks.cases)} release checks failed: "
                + "; ".join(f"{c.scenario_id}: {c.error_message}" for c in failed[:3]),
                f"fix them and run mlcd validate again (details in {report})",
            )
            exc.details = {"reports": [str(report)]}
            raise exc
    return StageResult(
        outcome="SUCCESS",
        message=f"{len(checks.cases)} release checks passed for project {key}",
        reports=[str(report)],
        details={"checks": [c.scenario_id for c in checks.cases]},
    )


def _environment_checks(
    ctx: StageContext, checks: _Checks, scenarios: dict[str, dict[str, Any]], node: Any
) -> None:
    cfg = ctx.config()
    ids = sorted(scenarios)
    required_connections: list[str] | None = None
    try:
        exported = node.list_exported_bundles(cfg.project)
        if exported:
            manifest = exported[-1].get("exportManifest") or {}
            conns = manifest.get("requiredConnections")
            if isinstance(conns, list):
                required_connections = [str(c) for c in conns]
    except MlcdError:
        required_connections = None

    for env in cfg.environments:

        def tests(env: Any = env) -> str:
            if not env.tests.enabled:
                return "tests disabled (tests: false)"
            selected = env.tests.select(ids, env.smoke)
            if env.tests.scenarios is not None:
                missing = [s for s in selected if s not in scenarios]
                if missing:
                    raise _CheckFailed(
                        f"test scenarios {', '.join(missing)} listed for {env.name} do not exist "
                        f"(project has: {', '.join(ids) or 'none'})"
                    )
            if not selected:
                raise _CheckFailed(
                    f"no test scenarios for {env.name}: {env.tests.describe()} matches none of "
                    f"{', '.join(ids) or 'no scenarios'} (add one, or set tests: false)"
                )
            return f"{len(selected)} test scenarios: {', '.join(selected)}"

        def smoke(env: Any = env) -> str:
            if not env.smoke:
                return "no smoke scenario configured"
            missing = [s for s in env.smoke if s not in scenarios]
            if missing:
                raise _CheckFailed(
                    f"smoke scenario {', '.join(missing)} of {env.name} "
                    f"does not exist in project {cfg.project}"
                )
            return f"smoke: {', '.join(env.smoke)}"

        def flaky(env: Any = env) -> str:
            missing = [s for s in env.flaky if s not in scenarios]
            if missing:
                raise _CheckFailed(
                    f"flaky scenarios {', '.join(missing)} of {env.name} do not exist "
                    "(fix 'flaky' in mlcd.yaml)"
                )
            return f"{len(env.flaky)} flaky scenarios declared" if env.flaky else "no flaky scenarios"

        def remappings(env: Any = env) -> str:
            problems = []
            for source, target in env.connection_remappings.items():
                if not _NAME.match(source) or not _NAME.match(target):
                    problems.append(f"{source} -> {target} is not a valid connection name")
                elif source == target:
                    problems.append(f"{source} is remapped to itself")
                elif required_connections is not None and source not in required_connections:
                    problems.append(
                        f"{source} is not a connection the project uses "
                        f"({', '.join(required_connections) or 'none'})"
                    )
            if problems:
                raise _CheckFailed(f"connection remappings of {env.name}: " + "; ".join(problems))
            if not env.connection_remappings:
                return "no connection remappings"
            return ", ".join(f"{s} -> {t}" for s, t in env.connection_remappings.items())

        checks.run(f"{env.name}: test scenarios", tests)
        checks.run(f"{env.name}: smoke scenarios", smoke)
        checks.run(f"{env.name}: flaky scenarios", flaky)
        checks.run(f"{env.name}: connection remappings", remappings)
        def states(env: Any = env) -> str:
            return _scenario_states(env, scenarios, cfg.project)

        checks.run(f"{env.name}: scenario states", states)


def _scenario_states(env: Any, scenarios: dict[str, dict[str, Any]], project: str) -> str:
    """mlcd.yaml's ``scenarios`` of ``env`` name scenarios the design project has."""
    wanted = env.settings.scenarios_active
    if wanted is None:
        return "scenario states kept by activation (scenarios: keep)"
    missing = sorted(s for s in wanted if s not in scenarios)
    if missing:
        raise _CheckFailed(
            f"scenarios {', '.join(missing)} named in scenarios of {env.name} do not exist in project "
            f"{project} (fix 'scenarios' in mlcd.yaml)"
        )
    on = sorted(s for s, active in wanted.items() if active)
    off = sorted(s for s, active in wanted.items() if not active)
    return f"active after activation: {', '.join(on) or 'none'}; inactive: {', '.join(off) or 'none'}"
