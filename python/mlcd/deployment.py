"""Deploying a bundle to an environment and rolling it back: the decisions and the steps.

Shared by ``mlcd deploy``, ``plan``, ``test``, ``smoke``, ``rollback`` and ``run``.
Rules kept here:

* the archive deployed is the one the run record names (same sha256, same bundle id);
* an environment needing approval gets nothing without an approval of this sha256;
* the active bundle before the deploy (the rollback target) is recorded in the
  run record and the audit trail before anything changes on the node;
* a failure before activation leaves the environment unchanged (exit 8); a
  failure once activation started is rolled back and verified (exit 4), or
  reported as needing a person (exit 5, or 7 when there is nothing to go back to);
* an environment is never left without an active bundle, nor silently on an
  unverified one.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mlcd.dss.errors import DSSError
from mlcd.errors import (
    DeployFailed,
    ExitCode,
    InputError,
    MlcdError,
    NodeError,
    NothingToRollBack,
    RollbackFailed,
    RolledBack,
)
from mlcd.redact import redact

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig
    from mlcd.dss.node import DSSNode
    from mlcd.runrecord import RunRecord
    from mlcd.stages.runner import StageContext, StageResult

CHUNK = 1024 * 1024

# run.json environments.<env>.state values
STATE_DEPLOYING = "DEPLOYING"
STATE_DEPLOYED = "DEPLOYED"
STATE_UNCHANGED = "UNCHANGED"
STATE_ROLLED_BACK = "ROLLED_BACK"
STATE_NEEDS_ATTENTION = "NEEDS_ATTENTION"


# -- the bundle archive --------------------------------------------------------------------------
@dataclass(frozen=True)
class BundleInfo:
    """What the local archive says about itself (its manifest and scenarios)."""

    bundle_id: str
    project_key: str
    required_connections: tuple[str, ...]
    scenarios: dict[str, dict[str, Any]]
    exported_on: Any = None


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_bundle(archive: Path) -> BundleInfo:
    """Read ``manifest.json`` and ``project/scenarios/*.json`` of a bundle zip (InputError if not one)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            scenarios: dict[str, dict[str, Any]] = {}
            for name in zf.namelist():
                p = PurePosixPath(name)
                if p.parent == PurePosixPath("project/scenarios") and p.suffix == ".json":
                    try:
                        definition = json.loads(zf.read(name))
                    except ValueError:
                        continue
                    if isinstance(definition, dict):
                        scenarios[str(definition.get("id") or p.stem)] = definition
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        raise InputError(
            f"{archive} is not a readable bundle archive (no valid manifest.json)",
            "run `mlcd bundle` or `mlcd fetch` again to get a good archive",
        ) from None
    if not isinstance(manifest, dict) or not manifest.get("bundleId"):
        raise InputError(f"{archive} has a manifest without a bundleId", "re-export the bundle")
    required = manifest.get("requiredConnections") or []
    return BundleInfo(
        bundle_id=str(manifest["bundleId"]),
        project_key=str(manifest.get("projectKey") or ""),
        required_connections=tuple(str(c) for c in required if c),
        scenarios=scenarios,
        exported_on=manifest.get("exportedOn"),
    )


def archive_path(record: RunRecord, explicit: str | None) -> Path:
    """The archive to deploy: ``--archive`` or the run record's."""
    return Path(explicit) if explicit else record.archive


def check_archive(record: RunRecord, archive: Path) -> BundleInfo:
    """Refuse an archive that is missing, or whose sha256 or bundle id differ from the run record."""
    if not archive.is_file():
        raise InputError(
            f"bundle archive {archive} does not exist",
            "run `mlcd bundle` or `mlcd fetch --bundle-id ...` first, or pass --archive",
        )
    actual = file_sha256(archive)
    if record.sha256 and actual != record.sha256:
        raise InputError(
            f"bundle archive {archive} has sha256 {actual[:12]}… but the run record expects "
            f"{record.sha256[:12]}… for bundle {record.bundle_id}; nothing was deployed",
            "deploy the exact archive this run built (re-run `mlcd fetch` if it was altered)",
        )
    if not record.sha256:
        raise InputError(
            f"the run record has no sha256 for bundle {record.bundle_id}; "
            "refusing to deploy unverified bytes",
            "run `mlcd bundle` or `mlcd fetch` again",
        )
    info = read_bundle(archive)
    if info.bundle_id != record.bundle_id:
        raise InputError(
            f"archive {archive} holds bundle {info.bundle_id}, the run record names {record.bundle_id}",
            "pass the archive of this run's bundle",
        )
    return info


def check_project(bundle: BundleInfo, project: str) -> None:
    """Refuse a bundle of another project than the one mlcd.yaml deploys (InputError)."""
    if bundle.project_key and bundle.project_key != project:
        raise InputError(
            f"bundle {bundle.bundle_id} is of project {bundle.project_key}, mlcd.yaml deploys {project}",
            "use the archive of this project",
        )


# -- approvals -----------------------------------------------------------------------------------
def approval_of(entry: dict[str, Any]) -> tuple[str | None, str | None]:
    """(approver, approved sha256) recorded in a run record environment entry."""
    approval = entry.get("approval")
    if isinstance(approval, dict):
        who = approval.get("approvedBy") or approval.get("approver") or entry.get("approvedBy")
        sha = approval.get("sha256") or entry.get("approvedSha256")
    else:
        who, sha = entry.get("approvedBy"), entry.get("approvedSha256")
    return (str(who) if who else None, str(sha) if sha else None)


def approval_problem(entry: dict[str, Any], env_name: str, sha256: str) -> str | None:
    """Why the run record's approval does not cover this bundle on ``env_name`` (None when it does)."""
    who, sha = approval_of(entry)
    if not who:
        return f"environment '{env_name}' needs an approval and this run has none"
    from mlcd.signing import verify_approval  # issue 12: only the approval step can sign one

    forged = verify_approval(entry, env_name, sha256)
    if forged:
        return forged
    if sha != sha256:
        return (
            f"the approval of environment '{env_name}' by {who} is for other bundle bytes "
            f"(sha256 {str(sha)[:12]}…), not this bundle ({sha256[:12]}…)"
        )
    return None


def require_approval(record: RunRecord, env: EnvironmentConfig) -> str | None:
    """Raise InputError (exit 2) when ``env`` needs an approval this run lacks; return the approver."""
    if not env.approval:
        return None
    problem = approval_problem(record.env(env.name), env.name, record.sha256)
    if problem:
        raise InputError(
            f"{problem}; nothing was deployed",
            f"run `mlcd approve --env {env.name} --approver NAME` (or `mlcd run --approve {env.name}`)",
        )
    return approval_of(record.env(env.name))[0]


# -- rollback target -----------------------------------------------------------------------------
def rollback_target(entry: dict[str, Any], bundle_id: str, explicit: str | None = None) -> str | None:
    """The bundle to go back to: ``explicit``, else the one recorded before this run's deploy.

    None when there is none (a first deploy, or this run never deployed there),
    or when the recorded one is this very bundle (nothing to go back to).
    """
    if explicit:
        return explicit
    previous = entry.get("previousBundleId")
    if not previous or previous == bundle_id:
        return None
    return str(previous)


def deployed_by_this_run(entry: dict[str, Any], bundle_id: str) -> bool:
    """True when this run activated ``bundle_id`` on the environment (and has not rolled it back)."""
    return entry.get("deployedBundleId") == bundle_id and entry.get("state") == STATE_DEPLOYED


# -- plan ----------------------------------------------------------------------------------------
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``plan-<env>.json``)."""
        return asdict(self)

    def lines(self) -> list[str]:
        """The plan as lines a person reads."""
        out = [
            f"environment {self.environment}: project {self.project} "
            f"({'exists' if self.project_exists else 'will be created from the bundle'})",
            f"active bundle now:   {self.active_now or '(none: first deploy)'}",
            f"active bundle after: {self.active_after}" + ("  (already active: no-op)" if self.noop else ""),
            f"bundle {self.bundle_id} already imported: {'yes' if self.already_imported else 'no'}",
        ]
        unknown = self.connections_unknown or "availability checked by DSS at activation"
        for c in self.connections:
            avail = {True: "available", False: "MISSING", None: unknown}
            out.append(f"connection {c['required']} -> {c['afterRemapping']}: {avail[c['available']]}")
        if not self.connections:
            out.append("connections required by the bundle: none")
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
    steps: list[str] = []
    if not noop:
        if not project_exists:
            steps.append(f"create project {project} from bundle {bundle.bundle_id}")
        elif already:
            steps.append(f"skip import: {bundle.bundle_id} is already imported")
        else:
            steps.append(f"import bundle {bundle.bundle_id}")
        if env.connection_remappings:
            mapping = ", ".join(f"{k}->{v}" for k, v in sorted(remap.items()))
            steps.insert(
                0 if project_exists else 1,
                f"write connection remappings {mapping} into the project's activation settings",
            )
        steps.append(f"preload bundle {bundle.bundle_id}")
        steps.append(f"activate bundle {bundle.bundle_id}")
        steps.append(f"verify that {bundle.bundle_id} is active")
    else:
        steps.append("nothing to do: the bundle is already active")
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
        missing_smoke=[s for s in env.smoke if s not in bundle.scenarios],
        approval_needed=env.approval,
        approved_by=approval_of(approval_entry)[0] if env.approval and not problem else None,
        approval_problem=problem,
        steps=steps,
        connections_unknown=None if node_connections is not None else connections_unknown,
    )


def effective_remappings(env: EnvironmentConfig, node_remappings: dict[str, str] | None) -> dict[str, str]:
    """The remappings activation will use: the node's settings, overridden by mlcd.yaml's."""
    return {**(node_remappings or {}), **env.connection_remappings}


def node_connection_names(node: DSSNode) -> tuple[set[str] | None, str | None]:
    """(connection names on the node, None) or (None, why unknown): a non-admin key cannot list them.

    Other errors (node unreachable...) propagate.
    """
    from mlcd.dss.errors import DSSForbidden, DSSNotFound

    try:
        listed = node.list_connections()
    except DSSForbidden:
        return None, "unknown (the key is not admin)"
    except DSSNotFound:
        return None, "unknown (the node cannot list connections)"
    return set(listed), None


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


def project_remappings(node: DSSNode, project: str) -> dict[str, str]:
    """Remappings already in the project's activation settings ({} if the node has none)."""
    from mlcd.dss.errors import DSSNotFound

    try:
        return node.get_connection_remappings(project)
    except DSSNotFound:
        return {}


def same_content(bundle: BundleInfo, imported: dict[str, Any]) -> bool:
    """Whether an imported bundle with this id is this archive (export time compared when both say it)."""
    theirs = imported.get("exportedOn")
    if bundle.exported_on in (None, "", 0) or theirs in (None, "", 0):
        return True
    return bool(str(theirs) == str(bundle.exported_on))


def imported_bundle_ids(node: DSSNode, project: str) -> set[str]:
    """Ids of the bundles imported in ``project`` on ``node``."""
    return {str(b.get("bundleId")) for b in node.list_imported_bundles(project) if b.get("bundleId")}


# -- the deploy lock -----------------------------------------------------------------------------
@contextmanager
def env_lock(ctx: StageContext, project: str, env: EnvironmentConfig) -> Iterator[None]:
    """Hold the environment's deploy lock (waiting up to ``--lock-timeout`` / ``timeouts.lock``)."""
    from mlcd.locking import LockHolder, deploy_lock

    explicit = getattr(ctx.args, "lock_timeout", None)
    timeout = float(explicit) if explicit is not None else float(env.timeouts.lock)

    def waiting(holder: LockHolder | None, path: Path) -> None:
        who = holder.describe() if holder else "another process"
        ctx.progress(f"waiting up to {timeout:g}s for the deploy lock {path}: held by {who}")

    with deploy_lock(
        project, env.name, timeout, build_url=ctx.build_url, command=ctx.command, on_wait=waiting
    ):
        yield


# -- rollback ------------------------------------------------------------------------------------
def rollback_to(
    node: DSSNode,
    project: str,
    env: EnvironmentConfig,
    target: str | None,
    audit: AuditTrail,
    progress: Any,
    *,
    bundle_id: str | None,
    reason: str,
) -> str:
    """Re-activate ``target`` and verify it is active; return it.

    NothingToRollBack (exit 7) without a target; RollbackFailed (exit 5) if
    activation fails or the node does not show ``target`` active afterwards.
    """
    if target is None:
        raise NothingToRollBack(
            f"there is no previous bundle to roll back to on environment '{env.name}' (first deploy, "
            f"or this run did not change the active bundle); bundle {bundle_id or '?'} stays active",
            f"fix the bundle and deploy again, or `mlcd rollback --env {env.name} --to BUNDLE`",
        )
    progress(f"rolling back to bundle {target} ({reason})")
    fields: dict[str, Any] = {"node": env.name, "environment": env.name, "bundle_id": target}
    try:
        with audit.action("rollback", detail={"reason": reason, "from": bundle_id}, **fields):
            node.activate_bundle(project, target)
    except MlcdError as exc:
        raise RollbackFailed(
            f"rollback of environment '{env.name}' to bundle {target} failed: {exc.one_line()}; "
            "the environment's active bundle is not verified",
            f"check project {project} on the {env.name} node and activate {target} by hand",
        ) from None
    verify_active(node, project, env, target, audit, rollback=True)
    return target


def verify_active(
    node: DSSNode, project: str, env: EnvironmentConfig, expected: str, audit: AuditTrail, *, rollback: bool
) -> None:
    """Re-read the active bundle; raise if it is not ``expected`` (RollbackFailed when ``rollback``)."""
    active: str | None = None
    try:
        with audit.action(
            "verify", node=env.name, environment=env.name, bundle_id=expected
        ) as detail:
            active = node.active_bundle_id(project)
            detail["activeBundleId"] = active
            if active != expected:
                raise VerificationMismatch(
                    f"the {env.name} node shows bundle {active or '(none)'} active, expected {expected}"
                )
    except MlcdError as exc:
        if rollback:
            raise RollbackFailed(
                f"could not verify the rollback of environment '{env.name}' to {expected}: {exc.one_line()}",
                f"check project {project} on the {env.name} node and activate {expected} by hand",
            ) from None
        raise


class VerificationMismatch(MlcdError):
    """The node does not show the bundle we activated as active."""

    exit_code = ExitCode.ROLLED_BACK
    category = "verification"


# -- deploy --------------------------------------------------------------------------------------
def mark_recorded(exc: MlcdError) -> MlcdError:
    """Mark an error whose audit ``deployment`` record is already written."""
    exc.deployment_recorded = True  # type: ignore[attr-defined]
    return exc


def is_recorded(exc: BaseException) -> bool:
    """Whether the audit ``deployment`` record of this failure is already written."""
    return bool(getattr(exc, "deployment_recorded", False))


@dataclass
class DeployResult:
    """What a deploy did."""

    outcome: str  # SUCCESS | NOOP
    bundle_id: str
    previous: str | None
    message: str


def deploy_bundle(
    ctx: StageContext,
    node: DSSNode,
    env: EnvironmentConfig,
    project: str,
    bundle: BundleInfo,
    archive: Path,
    record: RunRecord,
    *,
    final_record: bool,
) -> DeployResult:
    """Check connections, import, write remappings, preload, activate and verify ``bundle`` on ``env``.

    Call with the environment's deploy lock held. ``final_record`` writes the
    audit ``deployment`` SUCCEEDED record on success (when the deploy is the
    environment's last gate); otherwise an intermediate ``deploy`` DEPLOYED
    record is written and the last gate (test or smoke) writes the final one.
    """
    audit = ctx.audit()
    deadline = time.monotonic() + float(env.timeouts.deploy)
    bid = bundle.bundle_id
    sha = record.sha256
    common: dict[str, Any] = {"node": env.name, "environment": env.name, "bundle_id": bid, "sha256": sha}

    def unchanged(message: str, exc: MlcdError | None = None, hint: str | None = None) -> MlcdError:
        record.update_env(env.name, state=STATE_UNCHANGED)
        audit.deployment_outcome(env.name, "FAILED_UNCHANGED", bundle_id=bid, active_bundle_id=previous,
                                 message=message)
        if isinstance(exc, NodeError):
            return mark_recorded(exc)
        return mark_recorded(DeployFailed(message, hint or (exc.hint if exc else None)))

    # 1. what is there now: the rollback target, recorded before any change
    previous: str | None = None
    with audit.action("read_state", **common) as detail:
        exists = node.project_exists(project)
        previous = node.active_bundle_id(project) if exists else None
        imported = {str(b.get("bundleId")): b for b in node.list_imported_bundles(project)} if exists else {}
        on_node = project_remappings(node, project) if exists else {}
        available, unknown = node_connection_names(node)
        detail.update({"projectExists": exists, "activeBundleId": previous,
                       "connections": sorted(available) if available is not None else unknown})
    if previous == bid:
        message = f"bundle {bid} is already active on {env.name}: nothing to do"
        ctx.progress(message)
        audit.record("deploy", "NOOP", detail={"activeBundleId": previous}, **common)
        entry = record.env(env.name)
        fields: dict[str, Any] = {"deployedBundleId": bid, "state": STATE_DEPLOYED}
        if "previousBundleId" not in entry:
            fields["previousBundleId"] = None
        record.update_env(env.name, **fields)
        if final_record and not last_final_succeeded(ctx, env.name, bid):
            audit.deployment_outcome(
                env.name, "SUCCEEDED", bundle_id=bid, active_bundle_id=bid, message=message
            )
        return DeployResult("NOOP", bid, previous, message)

    record.update_env(env.name, previousBundleId=previous, deployedBundleId=None, state=STATE_DEPLOYING,
                      bundleId=bid, sha256=sha)
    audit.record("record_previous", "SUCCESS", detail={"previousBundleId": previous}, **common)
    ctx.progress(f"active bundle before this deploy (rollback target): {previous or '(none: first deploy)'}")

    # 2. connections: refused before anything changes when the node lacks one
    remap = effective_remappings(env, on_node)
    missing = missing_connections(bundle, remap, available)
    if missing:
        raise unchanged(
            f"bundle {bid} needs connection(s) {', '.join(missing)} that the {env.name} node does not "
            f"have; nothing was changed: {previous or 'no bundle'} is still active, the environment is "
            "unchanged",
            hint=connection_hint(env),
        )
    if available is None:
        ctx.progress(f"connections on {env.name}: {unknown}; DSS checks them at activation")

    def write_remappings() -> None:
        if not env.connection_remappings:
            return
        shown = ", ".join(f"{k} -> {v}" for k, v in sorted(remap.items()))
        with audit.action("set_connection_remappings", detail={"connectionRemappings": remap}, **common) as d:
            d["written"] = node.set_connection_remappings(project, remap)
        ctx.progress(f"connection remappings in the project's activation settings: {shown}")

    # 3. import, remappings, preload: failures leave the active bundle unchanged
    created = False
    try:
        if not exists:
            ctx.progress(f"creating project {project} from bundle {bid}")
            with audit.action("create_project_from_bundle", **common):
                node.create_project_from_bundle(archive)
            created = True
            write_remappings()
        elif bid in imported and not same_content(bundle, imported[bid]):
            raise DeployFailed(
                f"bundle id {bid} is already imported on {env.name} with other content "
                f"(exported {imported[bid].get('exportedOn')}, this archive {bundle.exported_on})",
                "bundle ids must be unique: build a new bundle (new build number)",
            )
        else:
            write_remappings()
            if bid in imported:
                ctx.progress(f"bundle {bid} is already imported: import skipped")
                audit.record("import", "SKIPPED", detail={"reason": "already imported"}, **common)
            else:
                ctx.progress(f"importing bundle {bid}")
                with audit.action("import", **common):
                    node.import_bundle(project, archive, bundle_id=bid)
        ctx.progress(f"preloading bundle {bid}")
        with audit.action("preload", **common):
            node.preload_bundle(project, bid)
        with audit.action("check_active", **common) as detail:
            current = node.active_bundle_id(project)
            detail["activeBundleId"] = current
        if time.monotonic() > deadline:
            raise DeployFailed(
                f"import and preload took longer than timeouts.deploy ({env.timeouts.deploy:g}s); "
                "stopped before activating",
                "raise timeouts.deploy in mlcd.yaml or check the node's load",
            )
        # this very bundle is fine too (e.g. a killed earlier attempt's activation landed late)
        allowed = {previous, bid}
        if current not in allowed:
            raise DeployFailed(
                f"the active bundle of {env.name} changed to {current} since this deploy started "
                f"(was {previous or 'none'}): another deployment raced this one; nothing was activated",
                "find the other deployment in the audit trail, then deploy again",
            )
    except MlcdError as exc:
        if created:
            raise created_without_bundle(ctx, env, project, record, bid, exc.one_line(), exc.hint) from None
        raise unchanged(f"deploy of {bid} to {env.name} failed before activation: {exc.one_line()}; "
                        "the environment is unchanged", exc) from None

    # 4. activate: from here a failure is rolled back
    ctx.progress(f"activating bundle {bid}")
    messages: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    try:
        with audit.action("activate", detail={"connectionRemappings": remap}, **common) as detail:
            report = node.activate_bundle(project, bid)
            messages = report_messages(report)
            detail["report"] = messages
    except MlcdError as exc:
        try:
            now = node.active_bundle_id(project)
        except MlcdError:
            now = "(unknown)"
        if now == previous:
            cause = exc.dss_message if isinstance(exc, DSSError) and exc.dss_message else exc.message
            if created:
                raise created_without_bundle(
                    ctx, env, project, record, bid, cause, activation_hint(exc, env)
                ) from None
            raise unchanged(
                f"DSS refused to activate {bid} on {env.name}: {exc.message}; "
                f"{previous or 'no bundle'} is still active, the environment is unchanged",
                exc,
                activation_hint(exc, env),
            ) from None
        raise after_activation_failure(
            ctx, node, env, project, record, bid, previous,
            f"activation of {bid} on {env.name} failed with an unknown result: {exc.one_line()}",
        ) from None
    for m in messages:
        ctx.progress(f"activation {m['severity'].lower()}: {m['message']}")
    errors = [m for m in messages if m["severity"] in ("ERROR", "FATAL") or m.get("isFatal")]
    if errors or report.get("error") or report.get("fatal"):
        first = errors[0]["message"] if errors else "the activation report says error"
        raise after_activation_failure(
            ctx, node, env, project, record, bid, previous,
            f"activation of {bid} on {env.name} reported {len(errors) or 1} error(s): {first}",
        ) from None

    # 5. verify
    try:
        verify_active(node, project, env, bid, audit, rollback=False)
    except MlcdError as exc:
        raise after_activation_failure(
            ctx, node, env, project, record, bid, previous, f"verification failed: {exc.one_line()}"
        ) from None
    record.update_env(env.name, deployedBundleId=bid, state=STATE_DEPLOYED)
    message = f"bundle {bid} is active on {env.name} (verified); previous: {previous or 'none'}"
    if final_record:
        audit.deployment_outcome(env.name, "SUCCEEDED", bundle_id=bid, active_bundle_id=bid, message=message)
    else:
        audit.record("deploy", "DEPLOYED", detail={"previousBundleId": previous, "message": message},
                     **common)
    return DeployResult("SUCCESS", bid, previous, message)


def report_messages(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of an activation report as ``{"severity", "message", ...}`` (severity upper-case)."""
    out = []
    for m in report.get("messages") or []:
        if not isinstance(m, dict):
            continue
        text = str(m.get("message") or m.get("title") or m.get("details") or "").strip()
        severity = str(m.get("severity") or ("ERROR" if m.get("isFatal") else "INFO")).upper()
        item = {"severity": severity, "message": text}
        for key in ("code", "title", "isFatal"):
            if key in m:
                item[key] = m[key]
        out.append(item)
    return out


def created_without_bundle(
    ctx: StageContext,
    env: EnvironmentConfig,
    project: str,
    record: RunRecord,
    bundle_id: str,
    cause: str,
    hint: str | None,
) -> MlcdError:
    """A first deploy created the project but could not activate: FAILED_NEEDS_ATTENTION, exit 7."""
    record.update_env(env.name, state=STATE_NEEDS_ATTENTION)
    message = (
        f"project {project} was created on {env.name} by this deploy and has no active bundle: "
        f"fix {cause.rstrip('.')} and deploy again"
    )
    ctx.audit().deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                   active_bundle_id=None, message=message)
    return mark_recorded(NothingToRollBack(message, hint))


def last_final_succeeded(ctx: StageContext, env_name: str, bundle_id: str) -> bool:
    """Whether the audit trail's last ``deployment`` record of ``env_name`` is SUCCEEDED for ``bundle_id``."""
    from mlcd.audit import read_audit

    finals = [
        r for r in read_audit(ctx.out_dir / "audit.jsonl")
        if r.get("operation") == "deployment" and r.get("environment") == env_name
    ]
    if not finals:
        return False
    return finals[-1].get("outcome") == "SUCCEEDED" and finals[-1].get("bundleId") == bundle_id


def connection_hint(env: EnvironmentConfig) -> str:
    """How to fix a connection the node lacks: ``connection_remappings`` in mlcd.yaml."""
    now = ", ".join(f"{k} -> {v}" for k, v in sorted(env.connection_remappings.items())) or "none"
    return (
        f"map each connection the bundle needs to one defined on the {env.name} node with "
        f"connection_remappings of environment {env.name} in mlcd.yaml (now: {now}); "
        f"`mlcd plan --env {env.name}` lists them"
    )


def activation_hint(exc: MlcdError, env: EnvironmentConfig) -> str | None:
    """How to fix a refused activation: connection errors point at ``connection_remappings``."""
    code = str(getattr(exc, "code", None) or "")
    if "CONNECTION" in code or "connection" in exc.message.lower():
        return connection_hint(env)
    return exc.hint


def after_activation_failure(
    ctx: StageContext,
    node: DSSNode,
    env: EnvironmentConfig,
    project: str,
    record: RunRecord,
    bundle_id: str,
    previous: str | None,
    cause: str,
) -> MlcdError:
    """Roll back after a failure once activation started; return the error to raise (4, 5 or 7)."""
    err = _after_activation_failure(ctx, node, env, project, record, bundle_id, previous, cause)
    return mark_recorded(err)


def _after_activation_failure(
    ctx: StageContext,
    node: DSSNode,
    env: EnvironmentConfig,
    project: str,
    record: RunRecord,
    bundle_id: str,
    previous: str | None,
    cause: str,
) -> MlcdError:
    audit = ctx.audit()
    try:
        rollback_to(node, project, env, previous, audit, ctx.progress, bundle_id=bundle_id, reason=cause)
    except NothingToRollBack as exc:
        record.update_env(env.name, state=STATE_NEEDS_ATTENTION)
        active = _active_or_none(node, project)
        audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                 active_bundle_id=active, message=f"{cause}; {exc.message}")
        return NothingToRollBack(f"{cause}; {exc.message}", exc.hint)
    except MlcdError as exc:
        record.update_env(env.name, state=STATE_NEEDS_ATTENTION)
        audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                 active_bundle_id=_active_or_none(node, project),
                                 message=f"{cause}; {exc.one_line()}")
        return RollbackFailed(f"{cause}; {exc.message}", exc.hint)
    record.update_env(env.name, state=STATE_ROLLED_BACK, deployedBundleId=None, activeBundleId=previous)
    message = f"{cause}; rolled back to {previous} (verified active)"
    audit.deployment_outcome(env.name, "FAILED_ROLLED_BACK", bundle_id=bundle_id, active_bundle_id=previous,
                             message=message)
    rolled = RolledBack(message, "look at the failure above, fix the bundle and deploy again")
    rolled.details = {"rolledBackTo": previous}  # type: ignore[attr-defined]
    return rolled


def _active_or_none(node: DSSNode, project: str) -> str | None:
    try:
        return node.active_bundle_id(project)
    except MlcdError:
        return None


# -- stage results -------------------------------------------------------------------------------
def error_result(
    ctx: StageContext,
    exc: MlcdError,
    *,
    outcome: str | None = None,
    exit_code: int | None = None,
    bundle_id: str | None = None,
    reports: list[str] | None = None,
    details: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
) -> StageResult:
    """A failed StageResult for ``exc`` (printing its one line), keeping reports, details and links.

    The error's own ``details`` (e.g. ``rolledBackTo``) and ``details["reports"]`` are kept too.
    """
    from mlcd.stages.runner import OUTCOME_BY_CATEGORY, StageResult

    message = redact(exc.one_line())
    print(f"mlcd {ctx.command}: error: {message}", file=sys.stderr, flush=True)
    own = dict(getattr(exc, "details", None) or {})
    all_reports = list(reports or [])
    all_reports += [str(r) for r in own.pop("reports", []) if str(r) not in all_reports]
    code = exit_code if exit_code is not None else exc.exit_code
    if exit_code is None and type(exc) is MlcdError:  # a bare MlcdError is bad usage, not a bug
        code = ExitCode.BAD_INPUT
    return StageResult(
        outcome=outcome or OUTCOME_BY_CATEGORY.get(exc.category, "FAILED"),
        message=message,
        exit_code=int(code),
        bundle_id=bundle_id,
        reports=all_reports,
        details={**own, **dict(details or {})},
        error_category=exc.category,
        links=dict(links or {}),
    )


def stage_links(
    ctx: StageContext, env: EnvironmentConfig, project: str, reports: list[str] | None = None
) -> dict[str, str]:
    """Links for a stage file: the project on the node, the HTML/JUnit reports, the audit trail."""
    links = {
        "project": f"{env.node.url.rstrip('/')}/projects/{project}/",
        "auditTrail": str(ctx.out_dir / "audit.jsonl"),
        "runRecord": str(ctx.out_dir / "run.json"),
    }
    for path in reports or []:
        name = Path(path).name
        if name.startswith("smoke-after-rollback"):
            key = "smokeAfterRollbackReport" if name.endswith(".html") else "smokeAfterRollbackJunit"
        else:
            key = "report" if name.endswith(".html") else "junit"
        links.setdefault(key, str(path))
    return links


# -- rollback with its smoke check ----------------------------------------------------------------
@dataclass
class RollbackOutcome:
    """A verified rollback: the bundle now active, how the smoke check after it went, its reports."""

    target: str
    smoke_ran: list[str]
    message: str
    reports: list[str] = field(default_factory=list)


def rollback_and_check(
    ctx: StageContext,
    node: DSSNode,
    env: EnvironmentConfig,
    project: str,
    record: RunRecord | None,
    target: str | None,
    *,
    bundle_id: str | None,
    reason: str,
    explicit: bool = False,
) -> RollbackOutcome:
    """Re-activate ``target``, verify it is active, then re-run the smoke scenarios it has.

    Raises NothingToRollBack (7) without a target, RollbackFailed (5) when
    activation, verification or the smoke check after it fails. Records the
    run record state; the caller writes the audit ``deployment`` record. The
    smoke check after the rollback is reported in
    ``reports/<env>/smoke-after-rollback.xml`` and ``.html`` (listed in the
    outcome, or in the error's ``details["reports"]``). ``explicit``: the target
    was named with ``--to`` (the messages then say so).
    """
    from mlcd.testing_gate import run_scenarios, write_gate_reports

    audit = ctx.audit()
    rollback_to(node, project, env, target, audit, ctx.progress, bundle_id=bundle_id, reason=reason)
    assert target is not None
    ran: list[str] = []
    reports: list[str] = []

    def failed(message: str, hint: str) -> RollbackFailed:
        if record is not None:
            record.update_env(env.name, state=STATE_NEEDS_ATTENTION, activeBundleId=target)
        err = RollbackFailed(message, hint)
        err.details = {"rolledBackTo": target, "reports": reports}  # type: ignore[attr-defined]
        return err

    if env.smoke:
        try:
            listed = {str(s.get("id")) for s in node.list_scenarios(project)}
            ran = [s for s in env.smoke if s in listed]
            if ran:
                gate = run_scenarios(
                    node, project, env, ran, audit, ctx.progress, kind="smoke-after-rollback",
                    bundle_id=target,
                )
            else:
                gate = None
        except MlcdError as exc:
            raise failed(
                f"rolled back {env.name} to {target} (verified active) but its smoke check could not run: "
                f"{exc.one_line()}",
                f"check project {project} on the {env.name} node",
            ) from None
        if gate is not None:
            properties = {
                "project": project,
                "environment": env.name,
                "bundleId": target,
                "rollbackOf": bundle_id or "",
                "rollbackReason": reason,
                "node": env.node.url,
            }
            reports = write_gate_reports(
                ctx.out_dir, env.name, "smoke-after-rollback", gate.cases, properties
            )
        if gate is not None and not gate.passed:
            if explicit:
                hint = f"bundle {target} fails its smoke check: choose another bundle with --to"
            else:
                hint = f"check project {project} on the {env.name} node: the previous bundle is unhealthy too"
            raise failed(
                f"rolled back {env.name} to {target} (verified active) but its smoke check failed: "
                f"{gate.summary()}",
                hint,
            )
    if record is not None:
        record.update_env(env.name, state=STATE_ROLLED_BACK, deployedBundleId=None, activeBundleId=target)
    smoke_note = f"smoke passed ({', '.join(ran)})" if ran else "no smoke scenario to re-run"
    return RollbackOutcome(
        target, ran, f"rolled back {env.name} to {target} (verified active; {smoke_note})", reports
    )


# -- after a failed gate ---------------------------------------------------------------------------
def gate_failure_result(
    ctx: StageContext,
    node: DSSNode,
    env: EnvironmentConfig,
    project: str,
    record: RunRecord | None,
    message: str,
    hint: str,
    reports: list[str],
    details: dict[str, Any],
    *,
    allow_rollback: bool,
    rolled_back_exit: int,
    nothing_exit: int,
) -> StageResult:
    """The result of a failed test/smoke gate, rolling ``env`` back when this run deployed it.

    Rollback happens only when ``allow_rollback`` and this run's bundle is the
    one it deployed there. Verified rollback → outcome ROLLED_BACK with
    ``rolled_back_exit``; no previous bundle → ``nothing_exit``; a failed
    rollback → ROLLBACK_FAILED, exit 5. Without rollback: GATE_FAILED, exit 3.
    Wherever a rollback happened, ``details.rolledBackTo`` names the bundle now active.
    """
    from mlcd.errors import GateFailed

    audit = ctx.audit()
    bundle_id = record.bundle_id if record is not None else None
    entry = dict(record.env(env.name)) if record is not None else {}
    ours = record is not None and bundle_id is not None and deployed_by_this_run(entry, bundle_id)
    links = stage_links(ctx, env, project, reports)
    if not (ours and allow_rollback):
        if ours:
            audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                     active_bundle_id=bundle_id,
                                     message=f"{message}; not rolled back (rollback disabled)")
            message += f"; not rolled back (rollback disabled): {bundle_id} stays active"
        return error_result(ctx, GateFailed(message, hint), bundle_id=bundle_id, reports=reports,
                            details=details, links=links)
    assert record is not None and bundle_id is not None
    target = rollback_target(entry, bundle_id)
    try:
        with env_lock(ctx, project, env):
            done = rollback_and_check(ctx, node, env, project, record, target, bundle_id=bundle_id,
                                      reason=message.split(":")[0])
    except NothingToRollBack as exc:
        record.update_env(env.name, state=STATE_NEEDS_ATTENTION)
        audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                 active_bundle_id=bundle_id, message=f"{message}; {exc.message}")
        err = NothingToRollBack(f"{message}; {exc.message}", exc.hint)
        outcome = "NOTHING_TO_ROLL_BACK" if nothing_exit == ExitCode.NOTHING_TO_ROLL_BACK else "GATE_FAILED"
        return error_result(ctx, err, outcome=outcome, exit_code=nothing_exit, bundle_id=bundle_id,
                            reports=reports, details=details, links=links)
    except MlcdError as exc:
        audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                 active_bundle_id=_active_or_none(node, project),
                                 message=f"{message}; {exc.one_line()}")
        failed = RollbackFailed(f"{message}; {exc.message}", exc.hint)
        failed.details = dict(getattr(exc, "details", None) or {})  # type: ignore[attr-defined]
        after = [str(r) for r in failed.details.get("reports", [])]  # type: ignore[attr-defined]
        return error_result(ctx, failed, bundle_id=bundle_id, reports=reports, details=details,
                            links=stage_links(ctx, env, project, reports + after))
    audit.deployment_outcome(env.name, "FAILED_ROLLED_BACK", bundle_id=bundle_id,
                             active_bundle_id=done.target, message=f"{message}; {done.message}")
    details = {**details, "rolledBackTo": done.target}
    all_reports = reports + done.reports
    return error_result(ctx, RolledBack(f"{message}; {done.message}", hint), outcome="ROLLED_BACK",
                        exit_code=rolled_back_exit, bundle_id=bundle_id, reports=all_reports, details=details,
                        links=stage_links(ctx, env, project, all_reports))


def error_after_deploy_result(
    ctx: StageContext,
    node: DSSNode,
    env: EnvironmentConfig,
    project: str,
    record: RunRecord | None,
    exc: MlcdError,
    *,
    what: str,
    allow_rollback: bool,
    reports: list[str] | None = None,
    details: dict[str, Any] | None = None,
) -> StageResult | None:
    """The result of a node error while ``what`` (tests/smoke) ran on a bundle this run deployed.

    None when this run did not deploy ``env`` (the caller re-raises: nothing of ours changed).
    Otherwise the new bundle must not stay active unchecked: another error rolls
    back when allowed (exit 4 verified, 5 failed, 7 nothing to go back to), else
    exit 5 (a person must act); an unreachable or refusing node, where nothing
    can be done, is FAILED_NEEDS_ATTENTION with exit 5 too.
    """
    bundle_id = record.bundle_id if record is not None else None
    entry = dict(record.env(env.name)) if record is not None else {}
    if record is None or bundle_id is None or not deployed_by_this_run(entry, bundle_id):
        return None
    audit = ctx.audit()
    cause = f"{what} on {env.name} could not complete: {exc.message}"
    details = {**(details or {}), "error": exc.one_line(), "errorCategory": exc.category}
    links = stage_links(ctx, env, project, reports)
    if isinstance(exc, NodeError) or not allow_rollback:
        record.update_env(env.name, state=STATE_NEEDS_ATTENTION)
        note = f"{cause}; bundle {bundle_id} stays active, not checked"
        active = None if isinstance(exc, NodeError) else _active_or_none(node, project)
        audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                 active_bundle_id=active, message=note)
        again = f"`mlcd {'test' if what == 'tests' else 'smoke'} --env {env.name}`"
        if isinstance(exc, NodeError):
            err = RollbackFailed(
                f"{note}: the {env.name} node cannot be reached to roll it back",
                f"when the node answers again, run {again} or `mlcd rollback --env {env.name}`",
            )
            return error_result(ctx, err, bundle_id=bundle_id, reports=reports, details=details, links=links)
        hint = f"run {again} again, or `mlcd rollback --env {env.name}`"
        return error_result(ctx, RollbackFailed(f"{note} (rollback disabled)", hint), outcome="FAILED",
                            bundle_id=bundle_id, reports=reports, details=details, links=links)
    target = rollback_target(entry, bundle_id)
    try:
        with env_lock(ctx, project, env):
            done = rollback_and_check(ctx, node, env, project, record, target, bundle_id=bundle_id,
                                      reason=f"{what} could not complete")
    except NothingToRollBack as nothing:
        record.update_env(env.name, state=STATE_NEEDS_ATTENTION)
        audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                 active_bundle_id=_active_or_none(node, project),
                                 message=f"{cause}; {nothing.message}")
        return error_result(ctx, NothingToRollBack(f"{cause}; {nothing.message}", nothing.hint),
                            bundle_id=bundle_id, reports=reports, details=details, links=links)
    except MlcdError as failed:
        audit.deployment_outcome(env.name, "FAILED_NEEDS_ATTENTION", bundle_id=bundle_id,
                                 active_bundle_id=_active_or_none(node, project),
                                 message=f"{cause}; {failed.one_line()}")
        rollback_failed = RollbackFailed(f"{cause}; {failed.message}", failed.hint)
        rollback_failed.details = dict(getattr(failed, "details", None) or {})  # type: ignore[attr-defined]
        return error_result(ctx, rollback_failed, bundle_id=bundle_id, reports=reports, details=details,
                            links=links)
    audit.deployment_outcome(env.name, "FAILED_ROLLED_BACK", bundle_id=bundle_id,
                             active_bundle_id=done.target, message=f"{cause}; {done.message}")
    details["rolledBackTo"] = done.target
    all_reports = list(reports or []) + done.reports
    return error_result(ctx, RolledBack(f"{cause}; {done.message}", "check the node, then deploy again"),
                        bundle_id=bundle_id, reports=all_reports, details=details,
                        links=stage_links(ctx, env, project, all_reports))


def check_active_is_ours(record: RunRecord | None, env_name: str, active: str | None) -> None:
    """Refuse (exit 2) to test another bundle than the one this run deployed on ``env_name``."""
    if record is None:
        return
    entry = record.env(env_name)
    if entry.get("bundleId") != record.bundle_id and entry.get("deployedBundleId") != record.bundle_id:
        return  # this run did not deploy there: the gate tests whatever is active
    if active != record.bundle_id:
        raise InputError(
            f"{active or 'no bundle'} is active on {env_name}, not this run's {record.bundle_id}: "
            "deploy first",
            f"run `mlcd deploy --env {env_name}`, then this command again",
        )
