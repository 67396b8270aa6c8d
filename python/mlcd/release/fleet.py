"""A multi-node environment (a fleet): the single-node release steps on every node at once, one outcome.

A thin fan-out over the release core, not a second one. Each node is its own
:class:`~mlcd.release.session.Release` (its own target, lock and ledger entry
``<env>@<node>``); deploying, gating, settling a failure and rolling back are
the single-node functions, and every rollback decision is the decision table's.
What this module adds:

* the steps run on all nodes concurrently, in a bounded thread pool;
* before anything changes, every node is read: one that cannot be read stops
  the deploy with nothing changed anywhere;
* when a node fails, every node this run changed is settled as a failed
  activation (deploy) or a failed gate (test, smoke): rolled back and verified
  where the table says so;
* the environment's one ``deployment`` record (beside one per node) is the
  worst of the nodes' (needs a person > rolled back > unchanged > succeeded),
  and a failure names exactly the nodes that need a person.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlcd.errors import DeployFailed, ExitCode, MlcdError, NodeError, error_for
from mlcd.release.decisions import (
    STATE_DEPLOYED,
    STATE_NEEDS_ATTENTION,
    STATE_ROLLED_BACK,
    STATE_UNCHANGED,
    Failed,
)
from mlcd.release.deploy import DeployResult, deploy_bundle
from mlcd.release.failure import Settled, settle
from mlcd.release.target import active_or_none

if TYPE_CHECKING:
    from mlcd.config import EnvironmentConfig, FleetNodeConfig
    from mlcd.release.archive import BundleInfo
    from mlcd.release.gate import GateRun
    from mlcd.release.ledger import Ledger
    from mlcd.release.session import Release

MAX_WORKERS = 16  # concurrent node conversations (each mostly waits on its node)

T = TypeVar("T")

# run.json state of a node -> the audit `deployment` outcome it goes with, worst last
_RECORD_OF_STATE = {
    STATE_DEPLOYED: "SUCCEEDED",
    STATE_UNCHANGED: "FAILED_UNCHANGED",
    STATE_ROLLED_BACK: "FAILED_ROLLED_BACK",
    STATE_NEEDS_ATTENTION: "FAILED_NEEDS_ATTENTION",
}
_SEVERITY = list(_RECORD_OF_STATE.values())


def node_environment(env: EnvironmentConfig, node: FleetNodeConfig) -> EnvironmentConfig:
    """The single-node environment ``<env>@<node>`` (the node's remappings over the environment's)."""
    return replace(
        env,
        name=member_name(env.name, node.name),
        node=node.node,
        connection_remappings={**env.connection_remappings, **node.connection_remappings},
        nodes=(),
    )


def member_name(env: str, node: str) -> str:
    """The name of a node of a fleet in run.json, the audit trail, reports and locks."""
    return f"{env}@{node}"


@dataclass
class Member:
    """One node of the fleet: its name and its release session."""

    node: str
    rel: Release


@dataclass
class FleetOutcome:
    """The environment's one outcome: record, exit code, sentence, fix, and each node's end."""

    record: str  # the environment's audit `deployment` outcome (SUCCEEDED, FAILED_...)
    exit_code: int
    message: str
    hint: str | None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> {state, active, message}
    needs_person: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    def error(self) -> MlcdError:
        """The (recorded) error the command ends with."""
        err = error_for(self.outcome, ExitCode(self.exit_code), self.message, self.hint)
        err.recorded = True
        err.details = {"nodes": self.nodes, "needsPerson": self.needs_person, "reports": self.reports}
        return err

    @property
    def outcome(self) -> str:
        """The stage file's outcome."""
        if self.record == "SUCCEEDED":
            return "SUCCESS"
        return {
            "FAILED_ROLLED_BACK": "ROLLED_BACK",
            "FAILED_UNCHANGED": "FAILED",
        }.get(self.record, "ROLLBACK_FAILED")


def fan_out(members: Sequence[Member], step: Callable[[Member], T]) -> list[T | Exception]:
    """Run ``step`` on every member concurrently (at most MAX_WORKERS at once); results in order."""

    def guarded(m: Member) -> T | Exception:
        try:
            return step(m)
        except Exception as exc:  # one node's failure is an outcome, not the end of the fan-out
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(members)))) as pool:
        return list(pool.map(guarded, members))


def _as_error(exc: Exception) -> MlcdError:
    return exc if isinstance(exc, MlcdError) else MlcdError(f"{type(exc).__name__}: {exc}")


# -- deploy -------------------------------------------------------------------------------------------
def deploy_fleet(
    env_ledger: Ledger,
    members: Sequence[Member],
    bundle: BundleInfo,
    archive: Path,
    sha256: str,
    *,
    final_record: bool,
) -> FleetOutcome:
    """Deploy ``bundle`` to every node; all verified, or every node this run changed settled."""
    bid, env = bundle.bundle_id, env_ledger.env
    previous = _read_before(env_ledger, members, bid)
    shared = set(previous.values())
    env_ledger.deploying(bid, sha256, next(iter(shared)) if len(shared) == 1 else None)

    def one(m: Member) -> DeployResult:
        with m.rel.lock():
            return deploy_bundle(m.rel, bundle, archive, sha256, final_record=False)

    results = fan_out(members, one)
    failed = [(m, _as_error(r)) for m, r in zip(members, results, strict=False) if isinstance(r, Exception)]
    for m, err in failed:
        if not err.recorded:
            _record_unchanged(m, bid, previous.get(m.node), err)
    if not failed:
        return _all_deployed(env_ledger, members, results, bid, final_record=final_record)
    cause = "; ".join(f"node {m.node}: {err.without_fix()}" for m, err in failed)
    _settle_changed(
        members, results, previous, f"the deploy of {bid} to {env} failed on another node ({cause})"
    )
    return _conclude(env_ledger, members, bid, f"deploy of {bid} to {env} failed: {cause}", failed[0][1])


def _active_before(m: Member) -> str | None:
    return m.rel.target.active_bundle() if m.rel.target.project_exists() else None


def _read_before(env_ledger: Ledger, members: Sequence[Member], bid: str) -> dict[str, str | None]:
    """Every node's active bundle before the deploy; raises (recorded) if any node cannot be read."""
    before = fan_out(members, _active_before)
    down = [(m, e) for m, e in zip(members, before, strict=False) if isinstance(e, Exception)]
    if down:
        raise _unreachable_before(env_ledger, members, before, down, bid)
    return {m.node: p for m, p in zip(members, before, strict=False) if not isinstance(p, Exception)}


def _settle_changed(
    members: Sequence[Member],
    results: list[DeployResult | Exception],
    previous: dict[str, str | None],
    message: str,
) -> None:
    """Settle every node this run changed after another node's deploy failed."""
    changed = [
        m
        for m, r in zip(members, results, strict=False)
        if isinstance(r, DeployResult) and r.outcome == "SUCCESS"
    ]
    fan_out(
        changed,
        lambda m: settle(
            m.rel,
            Failed.ACTIVATION,
            message,
            None,
            allowed=True,
            reason="another node of the environment failed",
            previous=previous.get(m.node),
        ),
    )


def _unreachable_before(
    env_ledger: Ledger,
    members: Sequence[Member],
    before: list[str | Exception | None],
    down: list[tuple[Member, Exception]],
    bid: str,
) -> MlcdError:
    names = ", ".join(m.node for m, _ in down)
    first = _as_error(down[0][1])
    message = (
        f"node(s) {names} of {env_ledger.env} could not be read before deploying ({first.without_fix()}); "
        "nothing was changed on any node"
    )
    for m, active in zip(members, before, strict=False):
        m.rel.ledger.final(
            "FAILED_UNCHANGED",
            bundle_id=bid,
            active=None if isinstance(active, Exception) else active,
            message=message,
        )
    env_ledger.final("FAILED_UNCHANGED", bundle_id=bid, active=None, message=message)
    hint = f"check node(s) {names}, then deploy again"
    err: MlcdError = NodeError(message, hint) if isinstance(first, NodeError) else DeployFailed(message, hint)
    err.recorded = True
    err.details = {"unreadable": [m.node for m, _ in down]}
    return err


def _record_unchanged(m: Member, bid: str, previous: str | None, err: MlcdError) -> None:
    """A node whose deploy stopped before its state was read: unchanged if it still shows ``previous``."""
    now = active_or_none(m.rel.target)
    outcome = "FAILED_UNCHANGED" if now == previous else "FAILED_NEEDS_ATTENTION"
    m.rel.ledger.final(
        outcome, bundle_id=bid, active=now, message=f"deploy of {bid} failed: {err.one_line()}"
    )


def _all_deployed(
    env_ledger: Ledger,
    members: Sequence[Member],
    results: list[DeployResult | Exception],
    bid: str,
    *,
    final_record: bool,
) -> FleetOutcome:
    env = env_ledger.env
    message = f"bundle {bid} is active on all {len(members)} node(s) of {env} (verified)"
    if final_record:
        for m in members:
            m.rel.ledger.succeeded_once(bid, f"bundle {bid} is active on {m.rel.env.name} (verified)")
        env_ledger.succeeded_once(bid, message)
    else:
        env_ledger.deployed(bid, previous=None, message=message, final=False)
    nodes = {
        m.node: {"state": STATE_DEPLOYED, "active": bid, "previous": r.previous, "outcome": r.outcome}
        for m, r in zip(members, results, strict=False)
        if isinstance(r, DeployResult)
    }
    return FleetOutcome("SUCCEEDED", 0, message, None, nodes)


# -- gates --------------------------------------------------------------------------------------------
def gate_fleet(
    env_ledger: Ledger,
    members: Sequence[Member],
    run_gate: Callable[[Member], GateRun],
    *,
    kind: str,
    allowed: bool,
    final_record: bool,
) -> FleetOutcome:
    """Run a gate on every node (``run_gate`` writes no final record); one failure settles every node."""
    bid = env_ledger.bundle_id
    env = env_ledger.env
    runs = fan_out(members, run_gate)
    done = {m.node: r for m, r in zip(members, runs, strict=False) if not isinstance(r, Exception)}
    failed = [(m, r) for m, r in zip(members, runs, strict=False) if not _passed(r)]
    reports = [p for r in done.values() for p in r.reports]
    if not failed:
        return _gate_passed(env_ledger, members, kind, reports, final_record=final_record)
    cause = "; ".join(f"node {m.node}: {_gate_cause(r)}" for m, r in failed)
    passed = [m for m in members if m.node in done and done[m.node].passed]
    reports += _settle_passed(
        passed, kind, f"{kind} failed on another node of {env} ({cause})", allowed=allowed
    )
    first = _first_error(r for _, r in failed)
    own = [r.settled for r in done.values() if r.settled is not None]
    outcome = _conclude(env_ledger, members, bid, f"{kind} failed on {env}: {cause}", first, own)
    outcome.reports = reports
    return outcome


def _settle_passed(passed: Sequence[Member], kind: str, message: str, *, allowed: bool) -> list[str]:
    """Settle every node whose gate passed after another node's failed; their reports."""
    settled = fan_out(
        passed,
        lambda m: settle(
            m.rel,
            Failed.TESTS if kind == "tests" else Failed.SMOKE,
            message,
            None,
            allowed=allowed,
            reason=f"{kind} failed on another node",
            gate=kind,
        ),
    )
    return [p for s in settled if isinstance(s, Settled) for p in s.reports]


def _first_error(runs: Iterable[GateRun | Exception]) -> MlcdError | None:
    return next((_as_error(r) for r in runs if isinstance(r, Exception)), None)


def _passed(run: GateRun | Exception) -> bool:
    return not isinstance(run, Exception) and run.passed


def _gate_cause(run: GateRun | Exception) -> str:
    return _as_error(run).without_fix() if isinstance(run, Exception) else run.summary


def _gate_passed(
    env_ledger: Ledger, members: Sequence[Member], kind: str, reports: list[str], *, final_record: bool
) -> FleetOutcome:
    """Every node passed: one record per node this run deployed, and the environment's."""
    bid, env = env_ledger.bundle_id, env_ledger.env
    message = f"{kind} passed on all {len(members)} node(s) of {env}"
    if final_record and bid:
        ours = [m for m in members if m.rel.ledger.ours()]
        for m in ours:
            m.rel.ledger.succeeded_once(bid, f"bundle {bid} on {m.rel.env.name}: {kind} passed")
        if ours:
            env_ledger.succeeded_once(bid, f"bundle {bid} deployed to {env}; {message}")
    outcome = FleetOutcome("SUCCEEDED", 0, message, None, reports=reports)
    outcome.nodes = {m.node: {"passed": True} for m in members}
    return outcome


# -- the environment's one outcome ----------------------------------------------------------------------
def _conclude(
    env_ledger: Ledger,
    members: Sequence[Member],
    bid: str | None,
    cause: str,
    first_error: MlcdError | None,
    settled: Sequence[Settled] = (),
) -> FleetOutcome:
    """The environment's record and exit code from the nodes' states (the worst wins)."""
    nodes: dict[str, dict[str, Any]] = {}
    for m in members:
        entry = m.rel.ledger.entry
        nodes[m.node] = {"state": entry.get("state"), "active": entry.get("activeBundleId")}
    worst = _worst_record(nodes)
    hint: str | None
    needs = sorted(name for name, n in nodes.items() if n["state"] == STATE_NEEDS_ATTENTION)
    actives = {n["active"] for n in nodes.values()}
    if needs:
        message = f"{cause}; node(s) needing a person: {', '.join(needs)}"
        hint = (
            f"check project {members[0].rel.project} on node(s) {', '.join(needs)} "
            f"(see the node records in the audit trail), then `mlcd status --env {env_ledger.env}`"
        )
        code = int(ExitCode.ROLLBACK_FAILED)
    elif worst == "FAILED_ROLLED_BACK":
        message = f"{cause}; every node this run changed was rolled back (verified)"
        hint = "look at the failing node above, fix it or the bundle, and deploy again"
        code = _rolled_back_code(settled)
    else:
        message = f"{cause}; no node was changed"
        hint = first_error.hint if first_error else None
        code = int(first_error.exit_code) if first_error and type(first_error) is not MlcdError else 8
    env_ledger.final(
        worst, bundle_id=bid, active=next(iter(actives)) if len(actives) == 1 else None, message=message
    )
    return FleetOutcome(worst, code, message, hint, nodes, needs)


def _worst_record(nodes: dict[str, dict[str, Any]]) -> str:
    """The environment's record: the worst of its nodes', never SUCCEEDED after a failure."""
    records = [_RECORD_OF_STATE.get(str(n["state"]), "FAILED_UNCHANGED") for n in nodes.values()]
    worst = max(records, key=_SEVERITY.index) if records else "FAILED_UNCHANGED"
    if (
        worst == "SUCCEEDED"
    ):  # a node failed but recorded nothing (e.g. a gate on a node this run never deployed)
        worst = "FAILED_UNCHANGED"
    return worst


def _rolled_back_code(settled: Sequence[Settled]) -> int:
    """GATE_FAILED if a node's own gate failed and was rolled back, else ROLLED_BACK."""
    gate_exit = [s.decision.exit_code for s in settled if s.decision.exit_code == ExitCode.GATE_FAILED]
    return int(gate_exit[0]) if gate_exit else int(ExitCode.ROLLED_BACK)
