"""The release page, ``<out-dir>/reports/index.html``: the whole run at a glance.

Built only from what mlcd already wrote in the out dir: ``run.json``, the stage
files ``<stage>[-<env>].json`` (and ``pipeline.json``), ``audit.jsonl`` and the
reports under ``reports/``. It shows the verdict, the bundle (id, sha256, git
commit), the stages in order per environment with their outcome, the approvals,
the test and smoke results with links to their reports, the rollbacks and how
they were verified, the final ``deployment`` audit record per environment and the
audit records of this run. Every command rewrites it (:func:`refresh_release_page`),
so `mlcd run` and the Jenkins steps leave it up to date.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcd.reports.charts import scenario_bars, scenario_durations_chart
from mlcd.reports.page import Page, td, tone

PAGE = Path("reports") / "index.html"
_RUN_STAGES = ("validate", "bundle", "fetch", "publish")
_ENV_STAGES = ("plan", "approve", "deploy", "test", "smoke", "rollback", "status")
_GATES = (
    ("tests", "test", "report.html"),
    ("smoke", "smoke", "smoke.html"),
    ("smoke after rollback", None, "smoke-after-rollback.html"),
)
_NOT_STAGE_FILES = ("run.json", "pipeline.json")
_DETAIL_CHARS = 240


@dataclass
class RunView:
    """What the out dir says about this run."""

    out_dir: Path
    record: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, Any] | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)  # of this run, each with "_file"
    audit: list[dict[str, Any]] = field(default_factory=list)  # of this run
    envs: list[str] = field(default_factory=list)  # in the order the run reached them

    @property
    def bundle_id(self) -> str | None:
        """The run's bundle id (from the run record), if any."""
        value = self.record.get("bundleId")
        return value if isinstance(value, str) else None

    def env_stages(self, env: str | None) -> list[dict[str, Any]]:
        """The stages of ``env`` (None: the run-level ones) in flow order."""
        order = _RUN_STAGES if env is None else _ENV_STAGES
        chosen = [s for s in self.stages if s.get("environment") == env]
        return sorted(chosen, key=lambda s: order.index(s["stage"]) if s["stage"] in order else len(order))

    def stage(self, name: str, env: str | None) -> dict[str, Any] | None:
        """One stage file's content, if the run has it."""
        return next((s for s in self.stages if s["stage"] == name and s.get("environment") == env), None)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _this_run_audit(records: list[dict[str, Any]], bundle_id: str | None) -> list[dict[str, Any]]:
    """The audit records of this run: from the records leading to its bundle to the end of the file."""
    starts = [
        i for i, r in enumerate(records)
        if r.get("operation") in ("bundle", "fetch") and r.get("bundleId") == bundle_id
    ]  # fmt: skip
    if not starts:
        return records if bundle_id is None else []
    start = starts[-1]
    while start > 0 and records[start - 1].get("bundleId") in (None, bundle_id):
        start -= 1
    return records[start:]


def load_run(out_dir: Path) -> RunView:
    """Read the run record, the stage files of this run and its audit records from ``out_dir``."""
    out_dir = Path(out_dir)
    record = _read_json(out_dir / "run.json")
    view = RunView(out_dir, record if isinstance(record, dict) else {})
    pipeline = _read_json(out_dir / "pipeline.json")
    if isinstance(pipeline, dict) and pipeline.get("bundleId") in (None, view.bundle_id):
        view.pipeline = pipeline
    found: list[tuple[float, dict[str, Any]]] = []
    for path in out_dir.glob("*.json"):
        data = _read_json(path)
        if path.name in _NOT_STAGE_FILES or not isinstance(data, dict) or not data.get("stage"):
            continue
        if data.get("bundleId") not in (None, view.bundle_id):
            continue  # a stage file of an earlier run in the same out dir
        data["_file"] = path
        found.append((path.stat().st_mtime, data))
    found.sort(key=lambda item: item[0])
    view.stages = [data for _, data in found]
    view.envs = _env_order(view)
    lines: list[dict[str, Any]] = []
    audit_path = out_dir / "audit.jsonl"
    if audit_path.is_file():
        for line in audit_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                lines.append(item)
    view.audit = _this_run_audit(lines, view.bundle_id)
    return view


def _env_order(view: RunView) -> list[str]:
    envs: list[str] = []
    for item in (view.pipeline or {}).get("details", {}).get("stages", []) or []:
        if isinstance(item, dict) and item.get("environment") and item["environment"] not in envs:
            envs.append(str(item["environment"]))
    for stage in view.stages:  # oldest first
        env = stage.get("environment")
        if env and env not in envs:
            envs.append(str(env))
    for env in view.record.get("environments") or {}:
        if env not in envs:
            envs.append(str(env))
    return envs


# -- sections ---------------------------------------------------------------------------------------
def _verdict(view: RunView) -> tuple[str, str]:
    """The run's outcome and a one-line message: the pipeline's, else the first unsuccessful stage's."""
    if view.pipeline is not None:
        return str(view.pipeline.get("outcome")), str(view.pipeline.get("message") or "")
    for stage in view.stages:
        if stage.get("outcome") not in ("SUCCESS", "NOOP"):
            where = f"{stage['stage']} {stage.get('environment') or ''}".strip()
            return str(stage.get("outcome")), f"{where}: {stage.get('message') or ''}"
    if not view.stages:
        return "", "no stage has run yet"
    return "SUCCESS", f"{len(view.stages)} stage(s) succeeded so far"


def _bundle_section(page: Page, view: RunView) -> None:
    rec = view.record
    page.add("<h2>Bundle</h2>")
    if not rec:
        page.add('<p class="note">No run record yet (`mlcd bundle` or `mlcd fetch` creates it).</p>')
        return
    items = [
        ("project", rec.get("project")),
        ("bundle id", rec.get("bundleId")),
        ("sha256", rec.get("sha256")),
        ("git commit", rec.get("gitSha")),
        ("size", f"{rec['size']} bytes" if isinstance(rec.get("size"), int) else None),
        ("created", rec.get("createdAt")),
        ("created by", rec.get("actor")),
        ("build", rec.get("buildNumber")),
        ("archive", rec.get("archive")),
    ]
    page.add('<dl class="meta">')
    for key, value in items:
        if value not in (None, ""):
            page.add(f"<dt>{page.text(key)}</dt><dd><code>{page.text(value)}</code></dd>")
    if rec.get("buildUrl"):
        url = str(rec["buildUrl"])
        page.add(f"<dt>build URL</dt><dd>{page.text(url)}</dd>")
    page.add("</dl>")
    notes = rec.get("releaseNotes")
    if notes:
        page.add(f"<details><summary>release notes</summary><pre>{page.text(notes)}</pre></details>")


def _report_links(page: Page, stage: dict[str, Any]) -> str:
    links = []
    for report in stage.get("reports") or []:
        path = Path(str(report))
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.is_file():
            kind = "HTML" if path.suffix == ".html" else "JUnit" if path.suffix == ".xml" else path.suffix
            links.append(page.link(path, f"{path.name} ({kind})"))
    return "<br>".join(links)


def _stages_section(page: Page, view: RunView) -> None:
    page.add("<h2>Stages</h2>")
    if not view.stages:
        page.add('<p class="note">No stage has run yet.</p>')
        return
    groups: list[tuple[str | None, str]] = [(None, "Release")]
    groups += [(env, f"Environment {env}") for env in view.envs]
    for env, heading in groups:
        stages = view.env_stages(env)
        if not stages:
            continue
        page.add(f"<h3>{page.text(heading)}</h3>")
        rows = []
        for stage in stages:
            outcome = str(stage.get("outcome") or "")
            ms = stage.get("durationMs")
            cells = [
                td(page.link(stage["_file"], str(stage["stage"]))),
                td(page.text(outcome), "outcome"),
                td(page.text(stage.get("exitCode")), "num"),
                td(f"{ms / 1000:.1f}s" if isinstance(ms, (int, float)) else "", "num"),
                td(page.text(stage.get("message"))),
                td(_report_links(page, stage)),
            ]
            rows.append((tone(outcome), cells))
        page.table(["stage", "outcome", "exit", "duration", "message", "reports"], rows)


def _approvals_section(page: Page, view: RunView) -> None:
    rows = []
    for env in view.envs:
        approval = ((view.record.get("environments") or {}).get(env) or {}).get("approval")
        if not isinstance(approval, dict):
            continue
        sha = str(approval.get("sha256") or "")
        covers = "this bundle" if sha and sha == view.record.get("sha256") else "another bundle"
        cells = [
            td(page.text(env)),
            td(page.text(approval.get("approver"))),
            td(page.text(approval.get("time"))),
            td(f"<code>{page.text(sha[:12])}</code>… ({covers})"),
            td(page.text(approval.get("comment"))),
        ]
        rows.append(("tone-ok" if covers == "this bundle" else "tone-bad", cells))
    page.add("<h2>Approvals</h2>")
    if not rows:
        page.add('<p class="note">No approval recorded in this run.</p>')
        return
    page.table(["environment", "approver", "time", "sha256 approved", "comment"], rows)


def _gates_section(page: Page, view: RunView) -> None:
    rolled_back = {r.get("environment") for r in view.audit if r.get("operation") == "rollback"}
    rows = []
    for env in view.envs:
        for label, stage_name, html_name in _GATES:
            report = view.out_dir / "reports" / env / html_name
            stage = view.stage(stage_name, env) if stage_name else None
            ours = env in rolled_back if stage_name is None else stage is not None
            if not report.is_file() or not ours:
                continue  # not run, or a report of an earlier run
            summary, passed = _gate_summary(view, env, stage)
            links = page.link(report, html_name)
            junit = report.with_name(html_name.replace("report.html", "tests.xml").replace(".html", ".xml"))
            if junit.is_file():
                links += f"<br>{page.link(junit, junit.name)}"
            result = td("pass" if passed else "FAIL", "outcome")
            cells = [td(page.text(env)), td(page.text(label)), result, td(page.text(summary)), td(links)]
            rows.append(("tone-ok" if passed else "tone-bad", cells))
    page.add("<h2>Tests and smoke checks</h2>")
    if not rows:
        page.add('<p class="note">No test or smoke gate has run yet.</p>')
        return
    page.table(["environment", "gate", "result", "summary", "reports"], rows)


def _durations_section(page: Page, view: RunView) -> None:
    """The scenario runs of this release as a bar chart (a PNG file next to the page)."""
    chart = view.out_dir / "reports" / "scenario-durations.png"
    if not scenario_durations_chart(chart, view.audit):
        return
    bars = scenario_bars(view.audit)
    slowest = max(bars, key=lambda b: b["seconds"])
    alt = (
        f"Bar chart of {len(bars)} scenario run(s) of this release; the longest: {slowest['scenario']} "
        f"on {slowest['environment']}, {slowest['seconds']:.1f} s"
    )
    caption = "seconds per scenario run, per environment"
    page.add("<h2>Scenario durations</h2>", page.chart(chart, alt, caption))


def _gate_summary(view: RunView, env: str, stage: dict[str, Any] | None) -> tuple[str, bool]:
    """The gate's summary and whether it passed (the smoke check after a rollback: from the audit)."""
    if stage is not None:
        details = stage.get("details") or {}
        summary = details.get("summary") or stage.get("message") or ""
        return str(summary), stage.get("outcome") == "SUCCESS"
    runs = [
        r for r in view.audit
        if r.get("operation") == "run_scenario" and r.get("environment") == env
        and (r.get("detail") or {}).get("gate") == "smoke-after-rollback"
    ]  # fmt: skip
    names = ", ".join(f"{(r.get('detail') or {}).get('scenario')} {r.get('outcome')}" for r in runs)
    return names or "no scenario ran", bool(runs) and all(r.get("outcome") == "SUCCESS" for r in runs)


def _verification(view: RunView, index: int) -> tuple[bool, str]:
    """Whether the rollback at ``view.audit[index]`` was verified (its target read back as active)."""
    rec = view.audit[index]
    env, target = rec.get("environment"), rec.get("bundleId")
    later = view.audit[index + 1 :]
    verify = next((r for r in later if r.get("operation") == "verify" and r.get("environment") == env), None)
    active = ((verify or {}).get("detail") or {}).get("activeBundleId")
    if verify is not None and verify.get("outcome") == "SUCCESS" and active == target:
        return True, f"verified: {target} active"
    return False, f"NOT verified (active: {active or 'unknown'})"


def _rollbacks_section(page: Page, view: RunView) -> None:
    rows = []
    for i, rec in enumerate(view.audit):
        if rec.get("operation") != "rollback":
            continue
        env = str(rec.get("environment"))
        verified, check = _verification(view, i)
        detail = rec.get("detail") or {}
        after = view.out_dir / "reports" / env / "smoke-after-rollback.html"
        smoke = page.link(after, "smoke check after rollback") if after.is_file() else "no smoke re-run"
        cells = [td(page.text(env)), td(page.text(detail.get("from") or "?")),
                 td(page.text(rec.get("bundleId"))),
                 td(page.text(detail.get("reason"))), td(page.text(rec.get("outcome")), "outcome"),
                 td(page.text(check)), td(smoke)]  # fmt: skip
        good = rec.get("outcome") == "SUCCESS" and verified
        rows.append(("tone-ok" if good else "tone-bad", cells))
    page.add("<h2>Rollbacks</h2>")
    if not rows:
        page.add('<p class="note">No rollback in this run.</p>')
        return
    page.table(["environment", "from", "to", "reason", "outcome", "verification", "after"], rows)


def _deployments_section(page: Page, view: RunView) -> None:
    last: dict[str, dict[str, Any]] = {}
    for rec in view.audit:
        if rec.get("operation") == "deployment" and rec.get("environment"):
            last[str(rec["environment"])] = rec
    page.add("<h2>Deployment record per environment</h2>")
    if not last:
        page.add('<p class="note">No final <code>deployment</code> audit record yet.</p>')
        return
    rows = []
    for env in [e for e in view.envs if e in last] + [e for e in last if e not in view.envs]:
        rec = last[env]
        detail = rec.get("detail") or {}
        outcome = str(rec.get("outcome") or "")
        cells = [td(page.text(env)), td(page.text(outcome), "outcome"), td(page.text(rec.get("bundleId"))),
                 td(page.text(detail.get("activeBundleId"))), td(page.text(rec.get("time"))),
                 td(page.text(detail.get("message")))]  # fmt: skip
        rows.append((tone(outcome), cells))
    page.table(["environment", "outcome", "bundle", "active bundle", "time", "message"], rows)


def _audit_section(page: Page, view: RunView) -> None:
    audit_file = view.out_dir / "audit.jsonl"
    page.add("<h2>Audit trail of this run</h2>")
    if not view.audit:
        page.add('<p class="note">No audit record for this run yet.</p>')
        return
    page.add(
        f'<p class="note">From {page.link(audit_file, "audit.jsonl")}, the append-only trail of actions.</p>',
        f"<details open><summary>{len(view.audit)} record(s) of this run</summary>",
    )
    rows = []
    for rec in view.audit:
        detail = json.dumps(rec.get("detail") or {}, sort_keys=True, ensure_ascii=False)
        if len(detail) > _DETAIL_CHARS:
            detail = detail[: _DETAIL_CHARS - 1] + "…"
        outcome = str(rec.get("outcome") or "")
        cells = [td(page.text(rec.get("time"))), td(page.text(rec.get("environment") or "")),
                 td(page.text(rec.get("operation"))), td(page.text(outcome), "outcome"),
                 td(page.text(rec.get("bundleId") or "")), td(page.text(rec.get("actor"))),
                 td(f"<code>{page.text(detail)}</code>")]  # fmt: skip
        rows.append(("" if outcome in ("SUCCESS", "SKIPPED") else tone(outcome), cells))
    page.table(["time", "environment", "operation", "outcome", "bundle", "actor", "detail"], rows)
    page.add("</details>")


def write_release_page(out_dir: Path) -> Path:
    """Write ``<out_dir>/reports/index.html`` (and ``mlcd.css`` next to it); return its path."""
    view = load_run(out_dir)
    project = view.record.get("project") or "mlcd"
    title = f"Release {view.bundle_id} of {project}" if view.bundle_id else f"{project}: release in progress"
    page = Page(Path(out_dir) / PAGE, title, root=Path(out_dir))
    outcome, message = _verdict(view)
    page.add(
        f"<h1>{page.text(title)}</h1>",
        f'<p class="verdict {tone(outcome)}">{page.text(outcome or "NOT STARTED")}</p>',
        f'<p class="summary">{page.text(message)}</p>',
    )
    for section in (
        _bundle_section, _stages_section, _approvals_section, _gates_section, _durations_section,
        _rollbacks_section,
        _deployments_section, _audit_section,
    ):  # fmt: skip
        section(page, view)
    links = [page.link(view.out_dir / name, name) for name in ("run.json", "audit.jsonl", "pipeline.json")
             if (view.out_dir / name).is_file()]  # fmt: skip
    if links:
        page.add(f'<p class="note">Raw records: {", ".join(links)}</p>')
    return page.write()


def refresh_release_page(out_dir: Path) -> Path | None:
    """Rewrite the release page after a command; never raises (a failure here changes no result).

    Returns the page's path, or None (with one note on stdout) when it could not be written.
    """
    try:
        return write_release_page(Path(out_dir))
    except Exception as exc:  # the page is a view: it must never change a command's result
        print(f"[mlcd] release page not updated: {type(exc).__name__}: {exc}", file=sys.stdout, flush=True)
        return None
