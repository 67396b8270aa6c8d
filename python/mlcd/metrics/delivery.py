"""Delivery metrics per project and environment, from the audit ``deployment`` records (pure; no I/O here).

Definitions (docs/delivery-metrics.md):

* a *deployment* is one audit ``deployment`` record (the ledger writes exactly one per
  environment and release attempt); its outcome is one of
  :data:`mlcd.audit.DEPLOYMENT_OUTCOMES`;
* *deployment frequency*: ``SUCCEEDED`` deployments per week over the window;
* *change failure rate*: deployments that did not succeed (rolled back, needing
  attention, or refused with the environment unchanged) over all deployments;
* *lead time*: from the ``bundle`` record of the same bundle id (the commit's build,
  which is where mlcd first sees the commit) to the ``SUCCEEDED`` deployment;
* *time to restore*: for ``FAILED_ROLLED_BACK``, from the first record of that deploy
  (``record_previous``) to the deployment record (the previous bundle is back and
  verified); for ``FAILED_NEEDS_ATTENTION``, to the environment's next ``SUCCEEDED``
  deployment (unrestored when there is none). ``FAILED_UNCHANGED`` left the
  environment as it was: nothing to restore.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

FAILED = ("FAILED_ROLLED_BACK", "FAILED_NEEDS_ATTENTION", "FAILED_UNCHANGED")
DEPLOY_STARTS = ("record_previous",)


@dataclass(frozen=True)
class Record:
    """One audit record with the project it belongs to (from the run record next to its trail)."""

    project: str
    time: datetime
    operation: str
    outcome: str
    environment: str | None
    bundle_id: str | None
    build_url: str | None = None
    source: str = ""


def parse_time(text: object) -> datetime | None:
    """An audit ``time`` (ISO-8601, ``Z`` or offset) as an aware datetime; None when unreadable."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def records_of(lines: Iterable[dict[str, Any]], project: str, source: str = "") -> list[Record]:
    """The readable records of one trail (lines without a time or operation are skipped)."""
    out = []
    for line in lines:
        when = parse_time(line.get("time"))
        if when is None or not isinstance(line.get("operation"), str):
            continue
        out.append(
            Record(
                project=project,
                time=when,
                operation=str(line["operation"]),
                outcome=str(line.get("outcome") or ""),
                environment=line.get("environment") if isinstance(line.get("environment"), str) else None,
                bundle_id=line.get("bundleId") if isinstance(line.get("bundleId"), str) else None,
                build_url=line.get("buildUrl") if isinstance(line.get("buildUrl"), str) else None,
                source=source,
            )
        )
    return out


@dataclass
class Row:
    """The metrics of one project and environment."""

    project: str
    environment: str
    outcomes: dict[str, int] = field(default_factory=dict)
    lead_times: list[float] = field(default_factory=list)
    restores: list[float] = field(default_factory=list)
    unrestored: int = 0
    days: list[str] = field(default_factory=list)  # the UTC day of each SUCCEEDED deployment

    @property
    def deployments(self) -> int:
        return sum(self.outcomes.values())

    @property
    def succeeded(self) -> int:
        return self.outcomes.get("SUCCEEDED", 0)

    def as_dict(self, window_days: float) -> dict[str, Any]:
        failed = self.deployments - self.succeeded
        return {
            "project": self.project,
            "environment": self.environment,
            "deployments": self.deployments,
            "succeeded": self.succeeded,
            "failed": failed,
            "outcomes": dict(sorted(self.outcomes.items())),
            "deploymentsPerWeek": round(self.succeeded * 7 / window_days, 3),
            "changeFailureRate": round(failed / self.deployments, 3) if self.deployments else None,
            "leadTimeMedianS": _median(self.lead_times),
            "leadTimeMaxS": round(max(self.lead_times), 1) if self.lead_times else None,
            "timeToRestoreMedianS": _median(self.restores),
            "restored": len(self.restores),
            "unrestored": self.unrestored,
            "successDays": sorted(set(self.days)),
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _dedupe(records: Iterable[Record]) -> list[Record]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in sorted(records, key=lambda r: r.time):
        key = (r.project, r.time, r.operation, r.outcome, r.environment, r.bundle_id)
        if key not in seen:  # the same trail archived by two builds counts once
            seen.add(key)
            out.append(r)
    return out


def _restore_seconds(r: Record, records: list[Record], index: int) -> float | None:
    same = [x for x in records if x.project == r.project and x.environment == r.environment]
    if r.outcome == "FAILED_ROLLED_BACK":
        starts = [
            x
            for x in same
            if x.operation in DEPLOY_STARTS and x.bundle_id == r.bundle_id and x.time <= r.time
        ]
        return (r.time - starts[-1].time).total_seconds() if starts else 0.0
    later = [x for x in records[index + 1 :] if x in same and _is_success(x)]
    return (later[0].time - r.time).total_seconds() if later else None


def _is_success(r: Record) -> bool:
    return r.operation == "deployment" and r.outcome == "SUCCEEDED"


def compute(records: Iterable[Record], *, end: datetime, days: float) -> dict[str, Any]:
    """The metrics of every project and environment with a deployment in ``(end - days, end]``."""
    start = end - timedelta(days=days)
    ordered = _dedupe(records)
    bundles: dict[tuple[str, str], datetime] = {}
    for r in ordered:
        if r.operation == "bundle" and r.bundle_id and r.outcome == "SUCCESS":
            bundles.setdefault((r.project, r.bundle_id), r.time)
    rows: dict[tuple[str, str], Row] = {}
    for i, r in enumerate(ordered):
        if r.operation != "deployment" or r.environment is None or not start < r.time <= end:
            continue
        row = rows.setdefault((r.project, r.environment), Row(r.project, r.environment))
        row.outcomes[r.outcome] = row.outcomes.get(r.outcome, 0) + 1
        if r.outcome == "SUCCEEDED":
            row.days.append(r.time.date().isoformat())
            built = bundles.get((r.project, r.bundle_id or ""))
            if built is not None:
                row.lead_times.append((r.time - built).total_seconds())
        elif r.outcome in ("FAILED_ROLLED_BACK", "FAILED_NEEDS_ATTENTION"):
            restored = _restore_seconds(r, ordered, i)
            if restored is None:
                row.unrestored += 1
            else:
                row.restores.append(restored)
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat(), "days": days},
        "rows": [rows[k].as_dict(days) for k in sorted(rows)],
    }


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h" if seconds < 172800 else f"{seconds / 86400:.1f}d"


HEADERS = ("project", "environment", "deploys", "ok", "per week", "failure rate", "lead time", "restore")


def table_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """The metrics as text cells, in :data:`HEADERS` order (lead time and restore: medians)."""
    out = []
    for row in metrics["rows"]:
        rate = row["changeFailureRate"]
        out.append(
            [
                row["project"],
                row["environment"],
                str(row["deployments"]),
                str(row["succeeded"]),
                f"{row['deploymentsPerWeek']:g}",
                "-" if rate is None else f"{rate:.0%}",
                _duration(row["leadTimeMedianS"]),
                _duration(row["timeToRestoreMedianS"])
                + (f" ({row['unrestored']} open)" if row["unrestored"] else ""),
            ]
        )
    return out


def text_table(headers: Iterable[str], rows: list[list[str]]) -> str:
    """Columns aligned with spaces (for a console)."""
    cells = [list(headers), *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
