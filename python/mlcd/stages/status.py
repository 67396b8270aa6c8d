"""`mlcd status --env E`: what is deployed on an environment and how its tests last went.

Prints the active bundle, the imported bundles with their dates (newest first)
the last finished run of each test and smoke scenario on the node, and this
run's own test and smoke results there (kept after a rollback), as readable
tables. The same data goes to ``status-<env>.json`` (``details``). Changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.audit import read_audit
from mlcd.commands.context import StageContext
from mlcd.commands.result import StageResult
from mlcd.dss.errors import DSSNotFound
from mlcd.errors import InputError
from mlcd.runrecord import RunRecord

if TYPE_CHECKING:
    from mlcd.config import EnvironmentConfig
    from mlcd.dss.node import DSSNode

MAX_BUNDLES = 20


def _when(ms: Any) -> str:
    if not isinstance(ms, int | float) or ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Rows as aligned text lines (header, rule, rows)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def this_run_results(out_dir: Path, env_name: str, bundle_id: str) -> list[dict[str, Any]]:
    """This run's test and smoke results for ``env_name``: the last attempt per gate and scenario.

    Read from the audit trail beside the run record, so they survive a rollback
    (the node then shows the previous bundle's runs).
    """
    last: dict[tuple[str, str], dict[str, Any]] = {}
    seen_bundle = False  # a smoke check after rollback counts once this bundle was on the env
    for rec in read_audit(out_dir / "audit.jsonl"):
        if rec.get("environment") != env_name:
            continue
        seen_bundle = seen_bundle or rec.get("bundleId") == bundle_id
        if rec.get("operation") != "run_scenario":
            continue
        detail = rec.get("detail") or {}
        gate = str(detail.get("gate") or "")
        if rec.get("bundleId") != bundle_id and not (seen_bundle and gate == "smoke-after-rollback"):
            continue
        scenario = str(detail.get("scenario") or "")
        last[(gate, scenario)] = {
            "gate": gate,
            "scenario": scenario,
            "outcome": rec.get("outcome"),
            "attempt": detail.get("attempt"),
            "runId": detail.get("runId"),
            "bundleId": rec.get("bundleId"),
            "time": rec.get("time"),
        }
    return list(last.values())


def run(ctx: StageContext) -> StageResult:
    """Read and print the state of ``--env`` (refused, exit 2, when the audit trail's chain is broken)."""
    from mlcd.stages.audit import check_trail

    cfg = ctx.config()
    env = ctx.environment()
    check_trail(ctx)
    if env.nodes:  # a multi-node environment: mlcd.stages.fleet
        from mlcd.stages import fleet

        return fleet.status(ctx)
    key = cfg.project
    node = ctx.env_node()
    ctx.progress(f"reading project {key} on {env.name} ({env.node.url})")
    try:
        active = node.active_bundle_id(key)
        imported = node.list_imported_bundles(key)
    except DSSNotFound:
        active, imported = None, []
    deployed = bool(imported) or active is not None
    bundles = sorted(imported, key=lambda b: b.get("importedOn") or 0, reverse=True)[:MAX_BUNDLES]
    bundle_rows = [
        {
            "bundleId": str(b.get("bundleId")),
            "active": str(b.get("bundleId")) == active,
            "importedOn": _when(b.get("importedOn")),
            "exportedOn": _when(b.get("exportedOn")),
            "exportedBy": b.get("exportedBy"),
        }
        for b in bundles
    ]

    tests = _last_tests(node, key, env) if deployed and active else []
    local, run_results = _this_run(ctx, env.name)
    _show(env, key, active, deployed, local, bundle_rows, tests, run_results)
    drift = _drift(node, key, env)
    return StageResult(
        outcome="SUCCESS",
        message=f"{env.name}: active bundle {active or 'none'}, {len(imported)} imported",
        bundle_id=active,
        details={
            "activeBundleId": active,
            "deployed": deployed,
            "importedBundles": bundle_rows,
            "importedCount": len(imported),
            "lastTests": tests,
            "runRecord": local,
            "runResults": run_results,
            "drift": drift,
        },
    )


def _drift(node: DSSNode, key: str, env: EnvironmentConfig) -> list[str]:
    """Print and return where the node differs from mlcd.yaml's variables, scenarios, code-env remappings."""
    if env.settings.empty:
        return []
    from mlcd.release.envapply import drift
    from mlcd.release.target import AutomationNodeTarget

    found = drift(AutomationNodeTarget(node, key, env.name), env.settings, env.name)
    lines = [c.drift_line(env.name) for c in found]
    print(
        f"Configuration drift on {env.name} (node against mlcd.yaml): {'none' if not lines else len(lines)}"
    )
    print("\n".join([*lines, ""]), flush=True)
    return lines


def _last_tests(node: DSSNode, key: str, env: EnvironmentConfig) -> list[dict[str, Any]]:
    """The last finished run of each test and smoke scenario on the node."""
    tests: list[dict[str, Any]] = []
    scenario_ids = [str(s.get("id")) for s in node.list_scenarios(key)]
    wanted = [*env.tests.select(scenario_ids, env.smoke), *env.smoke]
    for sid in dict.fromkeys(wanted):
        if sid not in scenario_ids:
            tests.append({"scenario": sid, "outcome": "MISSING", "runId": None, "start": "-", "end": "-"})
            continue
        runs = node.get_last_runs(key, sid, limit=1, only_finished=True)
        last = runs[0] if runs else {}
        result = last.get("result") or {}
        tests.append(
            {
                "scenario": sid,
                "kind": "smoke" if sid in env.smoke else "test",
                "outcome": str(result.get("outcome") or ("NEVER RUN" if not last else "RUNNING")),
                "runId": last.get("runId"),
                "start": _when(last.get("start")),
                "end": _when(last.get("end")),
            }
        )
    return tests


def _this_run(ctx: StageContext, env_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(this run's bundle and environment record, its gate results from the audit trail), if any."""
    if not RunRecord.exists(ctx.out_dir):
        return {}, []
    try:
        record = RunRecord.load(ctx.out_dir)
    except InputError:
        return {}, []
    local = {"bundleId": record.bundle_id, "environment": record.env(env_name)}
    return local, this_run_results(ctx.out_dir, env_name, record.bundle_id)


def _show(
    env: EnvironmentConfig,
    key: str,
    active: str | None,
    deployed: bool,
    local: dict[str, Any],
    bundle_rows: list[dict[str, Any]],
    tests: list[dict[str, Any]],
    run_results: list[dict[str, Any]],
) -> None:
    """Print the state as a person reads it."""
    print(f"\nEnvironment {env.name} ({env.node.url}), project {key}")
    print(f"Active bundle: {active or ('none' if deployed else 'project not deployed yet')}")
    if local:
        print(f"This run's bundle: {local['bundleId']}")
    if bundle_rows:
        print("\nImported bundles (newest first):")
        rows = [
            [str(b["bundleId"]), "*" if b["active"] else "", str(b["importedOn"]), str(b["exportedOn"])]
            for b in bundle_rows
        ]
        print("\n".join(table(["bundle", "active", "imported", "exported"], rows)))
    if tests:
        print("\nLast test outcomes:")
        cols = ("scenario", "kind", "outcome", "runId", "end")
        rows = [[str(t.get(c) or "-") for c in cols] for t in tests]
        print("\n".join(table(["scenario", "kind", "outcome", "run id", "finished"], rows)))
    if run_results:
        print(f"\nThis run's results on {env.name} (bundle {local['bundleId']}, from the audit trail):")
        run_cols = ("gate", "scenario", "outcome", "attempt", "runId", "time")
        rows = [[str(r.get(c) or "-") for c in run_cols] for r in run_results]
        print("\n".join(table(["gate", "scenario", "outcome", "attempt", "run id", "time"], rows)))
    print("", flush=True)
