"""The deploy plan: what a deploy of this bundle to one environment would change (pure, no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlcd.release.approval import approval_of, approval_problem

if TYPE_CHECKING:
    from mlcd.config import EnvironmentConfig
    from mlcd.release.archive import BundleInfo


@dataclass
class Plan:
    """What a deploy of this bundle to one environment would change (nothing is changed to build it)."""

    environment: str
    project: str
    bundle_id: str
    sha256: str
    project_exists: bool
    active_now: str | None
    active_after: str
    already_imported: bool
    noop: bool
    connections: list[dict[str, Any]]
    missing_connections: list[str]
    scenarios: list[str]
    tests: list[str]
    smoke: list[str]
    missing_smoke: list[str]
    approval_needed: bool
    approved_by: str | None
    approval_problem: str | None
    steps: list[str] = field(default_factory=list)
    connections_unknown: str | None = None  # why availability is unknown (e.g. the key is not admin)
    archive_prechecks: bool = True  # False: archive layout not recognised, connection/scenario checks skipped
    settings_managed: bool = False  # mlcd.yaml sets variables / scenario states / code-env remappings here
    settings_changes: list[str] = field(default_factory=list)  # "kind name: before -> after" (secrets hidden)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``plan-<env>.json``)."""
        return asdict(self)

    def _connection_lines(self) -> list[str]:
        out = []
        if not self.archive_prechecks:
            out.append(
                "archive pre-checks skipped: mlcd does not recognise this archive's layout "
                "(DSS checks connections at activation; tests are listed on the node)"
            )
        unknown = self.connections_unknown or "availability checked by DSS at activation"
        for c in self.connections:
            avail = {True: "available", False: "MISSING", None: unknown}
            out.append(f"connection {c['required']} -> {c['afterRemapping']}: {avail[c['available']]}")
        if not self.connections:
            out.append("connections required by the bundle: none")
        return out

    def lines(self) -> list[str]:
        """The plan as lines a person reads."""
        out = [
            f"environment {self.environment}: project {self.project} "
            f"({'exists' if self.project_exists else 'will be created from the bundle'})",
            f"active bundle now:   {self.active_now or '(none: first deploy)'}",
            f"active bundle after: {self.active_after}" + ("  (already active: no-op)" if self.noop else ""),
            f"bundle {self.bundle_id} already imported: {'yes' if self.already_imported else 'no'}",
        ]
        out.extend(self._connection_lines())
        out.append(f"scenarios in the bundle: {', '.join(self.scenarios) or 'none'}")
        out.append(f"tests that would run: {', '.join(self.tests) or 'none'}")
        out.append(f"smoke scenarios that would run: {', '.join(self.smoke) or 'none'}")
        if self.missing_smoke:
            out.append(f"WARNING smoke scenario(s) not in the bundle: {', '.join(self.missing_smoke)}")
        if self.approval_needed:
            out.append(
                f"approval: given by {self.approved_by}"
                if not self.approval_problem
                else f"approval: MISSING ({self.approval_problem})"
            )
        if self.settings_managed:
            count = len(self.settings_changes)
            out.append(f"configuration changes: {count or 'none'}")
            out.extend(f"  {c}" for c in self.settings_changes)
        out.extend(f"step: {s}" for s in self.steps)
        return out


def make_plan(
    env: EnvironmentConfig,
    project: str,
    bundle: BundleInfo,
    sha256: str,
    *,
    project_exists: bool,
    active_now: str | None,
    imported_ids: set[str],
    node_connections: set[str] | None,
    approval_entry: dict[str, Any],
    connections_unknown: str | None = None,
    node_remappings: dict[str, str] | None = None,
) -> Plan:
    """Compute the plan from what the node and the archive say (pure: no I/O).

    ``node_remappings`` are those already in the project's activation settings on
    the node; mlcd.yaml's ``connection_remappings`` override them source by source.
    """
    remap = effective_remappings(env, node_remappings)
    connections = []
    missing = []
    for required in bundle.required_connections:
        after = remap.get(required, required)
        available = None if node_connections is None else after in node_connections
        if available is False:
            missing.append(after)
        connections.append({"required": required, "afterRemapping": after, "available": available})
    scenario_ids = sorted(bundle.scenarios)
    tests = env.tests.select(scenario_ids, env.smoke)
    noop = active_now == bundle.bundle_id
    already = bundle.bundle_id in imported_ids
    problem = approval_problem(approval_entry, env.name, sha256) if env.approval else None
    steps = plan_steps(
        env, project, bundle.bundle_id, remap, project_exists=project_exists, noop=noop, already=already
    )
    return Plan(
        environment=env.name,
        project=project,
        bundle_id=bundle.bundle_id,
        sha256=sha256,
        project_exists=project_exists,
        active_now=active_now,
        active_after=bundle.bundle_id,
        already_imported=already,
        noop=noop,
        connections=connections,
        missing_connections=missing,
        scenarios=scenario_ids,
        tests=tests,
        smoke=list(env.smoke),
        missing_smoke=[s for s in env.smoke if s not in bundle.scenarios] if bundle.layout_known else [],
        approval_needed=env.approval,
        approved_by=approval_of(approval_entry)[0] if env.approval and not problem else None,
        approval_problem=problem,
        steps=steps,
        connections_unknown=None if node_connections is not None else connections_unknown,
        archive_prechecks=bundle.layout_known,
    )


def plan_steps(
    env: EnvironmentConfig,
    project: str,
    bundle_id: str,
    remap: dict[str, str],
    *,
    project_exists: bool,
    noop: bool,
    already: bool,
) -> list[str]:
    """The steps a deploy would take, in order."""
    if noop:
        return ["nothing to do: the bundle is already active"]
    steps: list[str] = []
    if not project_exists:
        steps.append(f"create project {project} from bundle {bundle_id}")
    elif already:
        steps.append(f"skip import: {bundle_id} is already imported")
    else:
        steps.append(f"import bundle {bundle_id}")
    if env.connection_remappings:
        mapping = ", ".join(f"{k}->{v}" for k, v in sorted(remap.items()))
        steps.insert(
            0 if project_exists else 1,
            f"write connection remappings {mapping} into the project's activation settings",
        )
    steps += [
        f"preload bundle {bundle_id}",
        f"activate bundle {bundle_id}",
        f"verify that {bundle_id} is active",
    ]
    return steps


def effective_remappings(env: EnvironmentConfig, node_remappings: dict[str, str] | None) -> dict[str, str]:
    """The remappings activation will use: the node's settings, overridden by mlcd.yaml's."""
    return {**(node_remappings or {}), **env.connection_remappings}


def missing_connections(bundle: BundleInfo, remap: dict[str, str], available: set[str] | None) -> list[str]:
    """Connections the bundle needs that are not on the node after ``remap`` ("a -> b" when remapped)."""
    if available is None:
        return []
    out = []
    for required in bundle.required_connections:
        after = remap.get(required, required)
        if after not in available:
            out.append(after if after == required else f"{required} -> {after}")
    return out
