"""Deploying a bundle to an environment: read the state, check, stage, activate, verify.

Rules:

* the active bundle before the deploy (the rollback target) is recorded in the
  run record and the audit trail before anything changes;
* a failure before activation leaves the environment unchanged (exit 8);
* once activation was asked for, anything that stops the deploy (an error, a
  refused or unverifiable activation, a signal, an exception while reporting)
  ends through :func:`mlcd.release.failure.settle`: rolled back and verified
  (exit 4), or recorded as needing a person (exit 5, or 7 with nothing to go back to);
* an environment is never left without an active bundle, nor silently on an unverified one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.dss.errors import DSSError
from mlcd.errors import DeployFailed, Interrupted, MlcdError, NodeError, NothingToRollBack
from mlcd.release import envapply
from mlcd.release.archive import BundleInfo, same_content
from mlcd.release.decisions import Failed, Rollback, after_failure
from mlcd.release.deployer_target import DeploymentUnhealthy
from mlcd.release.failure import settle
from mlcd.release.plan import effective_remappings, missing_connections
from mlcd.release.rollback import verify_active

if TYPE_CHECKING:
    from mlcd.config import EnvironmentConfig
    from mlcd.release.session import Release


@dataclass
class DeployResult:
    """What a deploy did."""

    outcome: str  # SUCCESS | NOOP
    bundle_id: str
    previous: str | None
    message: str


@dataclass
class NodeState:
    """What the environment holds before the deploy."""

    exists: bool
    previous: str | None
    imported: dict[str, dict[str, Any]]
    remappings: dict[str, str]
    connections: set[str] | None
    unknown: str | None
    settings: envapply.SettingsNow = field(default_factory=envapply.SettingsNow)


def read_state(rel: Release, common: dict[str, Any]) -> NodeState:
    """Read (audited) what the environment holds now: project, active bundle, imports, connections."""
    t = rel.target
    with rel.audit.action("read_state", **common) as detail:
        exists = t.project_exists()
        previous = t.active_bundle() if exists else None
        imported = t.imported_bundles() if exists else {}
        on_node = t.remappings() if exists else {}
        available, unknown = t.connections()
        settings = envapply.read_now(t, rel.env.settings, exists)
        detail.update(
            {
                "projectExists": exists,
                "activeBundleId": previous,
                "connections": sorted(available) if available is not None else unknown,
            }
        )
    return NodeState(exists, previous, imported, on_node, available, unknown, settings)


def deploy_bundle(
    rel: Release, bundle: BundleInfo, archive: Path, sha256: str, *, final_record: bool
) -> DeployResult:
    """Check connections, import, write remappings, preload, activate and verify ``bundle``.

    Call with the environment's deploy lock held. ``final_record`` writes the audit
    ``deployment`` SUCCEEDED record on success (the deploy is the environment's last
    gate); otherwise an intermediate ``deploy`` DEPLOYED record. Errors raised are
    recorded (their ``recorded`` is true) except those before the state was read.
    """
    bid = bundle.bundle_id
    common: dict[str, Any] = {
        "node": rel.env.name,
        "environment": rel.env.name,
        "bundle_id": bid,
        "sha256": sha256,
    }
    values = rel.env.settings.resolved_variables(rel.env.name)  # a secret not set: exit 2, nothing read
    state = read_state(rel, common)
    previous = state.previous
    if previous == bid:
        message = f"bundle {bid} is already active on {rel.env.name}: nothing to do"
        for line in envapply.apply_without_activation(rel, values, common):
            rel.progress(line)
        rel.progress(message)
        rel.audit.record("deploy", "NOOP", detail={"activeBundleId": previous}, **common)
        rel.ledger.deployed(bid, previous=previous, message=message, final=final_record, noop=True)
        return DeployResult("NOOP", bid, previous, message)
    try:  # a signal while the rollback target is being recorded: nothing changed, and the record says so
        rel.ledger.deploying(
            bid,
            sha256,
            previous,
            settings_before=envapply.before_record(rel.env.settings, state.settings),
            settings_applied=envapply.after_record(rel.env.settings),
        )
        rel.progress(
            f"active bundle before this deploy (rollback target): {previous or '(none: first deploy)'}"
        )
        for change in envapply.changes(rel.env.settings, state.settings, values):
            rel.progress(f"configuration change: {change.line()}")
        remap = effective_remappings(rel.env, state.remappings)
    except KeyboardInterrupt as exc:
        what = f"deploy of {bid} to {rel.env.name} was interrupted before activation ({_what(exc)})"
        _unchanged(rel, bid, previous, f"{what}; the environment is unchanged")
        raise
    created = _stage(rel, bundle, archive, state, remap, common, values)
    message = f"bundle {bid} is active on {rel.env.name} (verified); previous: {previous or 'none'}"
    _activate(
        rel,
        bid,
        previous,
        remap,
        created,
        common,
        values,
        lambda: envapply.undo(rel, values, state.settings),
        lambda: rel.ledger.deployed(bid, previous=previous, message=message, final=final_record),
    )
    return DeployResult("SUCCESS", bid, previous, message)


def _unchanged(
    rel: Release,
    bid: str,
    previous: str | None,
    message: str,
    exc: MlcdError | None = None,
    hint: str | None = None,
) -> MlcdError:
    decision = after_failure(Failed.BEFORE_ACTIVATION, False, True, Rollback.NOT_TRIED)
    rel.ledger.final(str(decision.record), bundle_id=bid, active=previous, message=message)
    err = exc if isinstance(exc, NodeError) else DeployFailed(message, hint or (exc.hint if exc else None))
    err.recorded = True
    return err


def _stage(
    rel: Release,
    bundle: BundleInfo,
    archive: Path,
    state: NodeState,
    remap: dict[str, str],
    common: dict[str, Any],
    values: dict[str, Any],
) -> bool:
    """Connections, import (or create), remappings, preload, variables, race check; True when created."""
    bid, env, previous = bundle.bundle_id, rel.env, state.previous
    created = False
    try:
        missing = missing_connections(bundle, remap, state.connections)
        if missing:
            raise _unchanged(
                rel,
                bid,
                previous,
                f"bundle {bid} needs connection(s) {', '.join(missing)} that the {env.name} node does not "
                f"have; nothing was changed: {previous or 'no bundle'} is still active, "
                "the environment is unchanged",
                hint=connection_hint(env),
            )
        if state.connections is None:
            rel.progress(f"connections on {env.name}: {state.unknown}; DSS checks them at activation")
        deadline = time.monotonic() + float(env.timeouts.deploy)
        created = _import(rel, bundle, archive, state, remap, common)
        rel.progress(f"preloading bundle {bid}")
        with rel.audit.action("preload", **common):
            rel.target.preload(bid)
        _check_not_raced(rel, bid, previous, deadline, common)
        envapply.write_variables(rel, values, state.settings, common)  # last: they take effect at once
    except MlcdError as exc:
        if exc.recorded:  # already settled and recorded (a created project left without a bundle)
            raise
        if not created:
            envapply.undo(rel, values, state.settings)
        raise _unchanged(
            rel,
            bid,
            previous,
            f"deploy of {bid} to {env.name} failed before activation: "
            f"{exc.without_fix()}; {_unchanged_text(rel, created)}",
            exc,
        ) from None
    except KeyboardInterrupt as exc:  # a signal before activation: nothing changed, and the record says so
        what = f"deploy of {bid} to {env.name} was interrupted before activation ({_what(exc)})"
        if not created:
            envapply.undo(rel, values, state.settings)
        _unchanged(rel, bid, previous, f"{what}; {_unchanged_text(rel, created)}")
        raise
    return created


def _import(
    rel: Release,
    bundle: BundleInfo,
    archive: Path,
    state: NodeState,
    remap: dict[str, str],
    common: dict[str, Any],
) -> bool:
    bid, env = bundle.bundle_id, rel.env
    if not state.exists:
        rel.progress(f"creating project {rel.project} from bundle {bid}")
        with rel.audit.action("create_project_from_bundle", **common):
            rel.target.create_from_bundle(archive)
        try:
            _write_remappings(rel, remap, common)
            envapply.write_code_envs(rel, common)
        except MlcdError as exc:  # the project exists now, with nothing active: a failure before activation
            raise _unchanged(
                rel,
                bid,
                None,
                f"deploy of {bid} to {env.name} failed before activation: "
                f"{exc.without_fix()}; {_unchanged_text(rel, True)}",
                exc,
            ) from None
        return True
    if bid in state.imported and not same_content(bundle, state.imported[bid]):
        raise DeployFailed(
            f"bundle id {bid} is already imported on {env.name} with other content "
            f"(exported {state.imported[bid].get('exportedOn')}, this archive {bundle.exported_on})",
            "bundle ids must be unique: build a new bundle (new build number)",
        )
    _write_remappings(rel, remap, common)
    envapply.write_code_envs(rel, common)
    if bid in state.imported:
        rel.progress(f"bundle {bid} is already imported: import skipped")
        rel.audit.record("import", "SKIPPED", detail={"reason": "already imported"}, **common)
    else:
        rel.progress(f"importing bundle {bid}")
        with rel.audit.action("import", **common):
            rel.target.import_bundle(archive, bid)
    return False


def _unchanged_text(rel: Release, created: bool) -> str:
    """How the environment stands after a failure before activation (a created project has no bundle)."""
    if created:
        return (
            f"project {rel.project} was created on {rel.env.name} by this deploy and has no active bundle: "
            "the environment is unchanged (no bundle active)"
        )
    return "the environment is unchanged"


def _write_remappings(rel: Release, remap: dict[str, str], common: dict[str, Any]) -> None:
    if not rel.env.connection_remappings:
        return
    shown = ", ".join(f"{k} -> {v}" for k, v in sorted(remap.items()))
    with rel.audit.action("set_connection_remappings", detail={"connectionRemappings": remap}, **common) as d:
        d["written"] = rel.target.set_remappings(remap)
    rel.progress(f"connection remappings in the project's activation settings: {shown}")


def _check_not_raced(
    rel: Release, bid: str, previous: str | None, deadline: float, common: dict[str, Any]
) -> None:
    env = rel.env
    with rel.audit.action("check_active", **common) as detail:
        current = rel.target.active_bundle()
        detail["activeBundleId"] = current
    if time.monotonic() > deadline:
        raise DeployFailed(
            f"import and preload took longer than timeouts.deploy ({env.timeouts.deploy:g}s); "
            "stopped before activating",
            "raise timeouts.deploy in mlcd.yaml or check the node's load",
        )
    # this very bundle is fine too (e.g. a killed earlier attempt's activation landed late)
    if current not in (previous, bid):
        raise DeployFailed(
            f"the active bundle of {env.name} changed to {current} since this deploy started "
            f"(was {previous or 'none'}): another deployment raced this one; nothing was activated",
            "find the other deployment in the audit trail, then deploy again",
        )


def _activate(
    rel: Release,
    bid: str,
    previous: str | None,
    remap: dict[str, str],
    created: bool,
    common: dict[str, Any],
    values: dict[str, Any],
    undo: Callable[[], None],
    record: Callable[[], None],
) -> None:
    """Activate, verify and ``record``; from the moment activation is asked for, every way out is settled."""
    rel.progress(f"activating bundle {bid}")
    try:
        report = _ask_activation(rel, bid, previous, remap, created, common, undo)
        _check_report(rel, bid, report)
        try:
            verify_active(rel, bid)
        except MlcdError as exc:
            raise _Unsettled(f"verification failed: {exc.one_line()}") from None
        envapply.check_after_activation(rel, values, common)
        record()
    except MlcdError as exc:
        if exc.recorded:
            raise
        cause = exc.message if isinstance(exc, _Unsettled) else exc.one_line()
        raise _settled(rel, previous, cause) from None
    except (KeyboardInterrupt, Exception) as exc:  # a signal, or a bug while reporting
        raise _settled(
            rel,
            previous,
            f"deploy of {bid} to {rel.env.name} was interrupted after activation was asked for "
            f"({_what(exc)})",
        ) from None


def _check_report(rel: Release, bid: str, report: dict[str, Any]) -> None:
    """Show the activation report; _Unsettled when it says error."""
    messages = report_messages(report)
    for m in messages:
        rel.progress(f"activation {m['severity'].lower()}: {m['message']}")
    errors = [m for m in messages if m["severity"] in ("ERROR", "FATAL") or m.get("isFatal")]
    if errors or report.get("error") or report.get("fatal"):
        first = errors[0]["message"] if errors else "the activation report says error"
        raise _Unsettled(
            f"activation of {bid} on {rel.env.name} reported {len(errors) or 1} error(s): {first}"
        )


def _what(exc: BaseException) -> str:
    if isinstance(exc, Interrupted):
        return exc.signal_name
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    return f"{type(exc).__name__}: {exc}"


class _Unsettled(MlcdError):
    """A failure after activation, not yet rolled back."""


def _settled(rel: Release, previous: str | None, cause: str) -> MlcdError:
    return settle(rel, Failed.ACTIVATION, cause, None, allowed=True, previous=previous).error()


def _ask_activation(
    rel: Release,
    bid: str,
    previous: str | None,
    remap: dict[str, str],
    created: bool,
    common: dict[str, Any],
    undo: Callable[[], None],
) -> dict[str, Any]:
    """Ask the target to activate; a refusal that left the previous bundle active leaves it unchanged."""
    try:
        scenarios = envapply.scenarios_on_activation(rel)
        what = {"connectionRemappings": remap, "scenariosActiveOnActivation": scenarios}
        with rel.audit.action("activate", detail=what, **common) as detail:
            report = rel.target.activate(bid, scenarios) if scenarios else rel.target.activate(bid)
            detail["report"] = report_messages(report)
            return report
    except MlcdError as exc:
        try:
            now = rel.target.active_bundle()
        except MlcdError:
            now = "(unknown)"
        if now != previous and isinstance(exc, DeploymentUnhealthy):  # the update ran and failed: known
            raise _Unsettled(
                f"activation of {bid} on {rel.env.name} through the Project Deployer failed: {exc.message}"
            ) from None
        if now != previous:
            raise _Unsettled(
                f"activation of {bid} on {rel.env.name} failed with an unknown result: {exc.one_line()}"
            ) from None
        cause = exc.dss_message if isinstance(exc, DSSError) and exc.dss_message else exc.message
        if created:
            raise created_without_bundle(rel, bid, cause, activation_hint(exc, rel.env)) from None
        undo()  # the settings written for this activation: back as they were
        raise _unchanged(
            rel,
            bid,
            previous,
            f"DSS refused to activate {bid} on {rel.env.name}: {exc.message}; "
            f"{previous or 'no bundle'} is still active, the environment is unchanged",
            exc,
            activation_hint(exc, rel.env),
        ) from None


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


def created_without_bundle(rel: Release, bundle_id: str, cause: str, hint: str | None) -> MlcdError:
    """A first deploy created the project but could not activate: FAILED_NEEDS_ATTENTION, exit 7."""
    message = (
        f"project {rel.project} was created on {rel.env.name} by this deploy and has no active bundle: "
        f"fix {cause.rstrip('.')} and deploy again"
    )
    rel.ledger.final("FAILED_NEEDS_ATTENTION", bundle_id=bundle_id, active=None, message=message)
    err = NothingToRollBack(message, hint)
    err.recorded = True
    return err


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
