"""`mlcd jenkins report`: the last builds of a job (or of every job in a folder) read through python-jenkins.

Per build: result, start, duration, the description mlcd wrote, its URL, the stages
and their status (pipeline-stage-view's ``wfapi/describe``) and the failing tests
with their messages (junit's ``testReport/api/json``). A folder or multibranch job
is walked down to its branch jobs (at most :data:`MAX_DEPTH` levels, :data:`MAX_JOBS` jobs).
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcd.commands.context import StageContext
from mlcd.commands.options import JenkinsOptions
from mlcd.commands.result import StageResult
from mlcd.jenkins.client import connect, jenkins_call
from mlcd.metrics.delivery import text_table
from mlcd.redact import clip
from mlcd.reports.page import Page, td, tone
from mlcd.runrecord import write_json_atomic

MAX_DEPTH = 3
MAX_JOBS = 200
FAILING = ("FAILED", "REGRESSION")
HEADERS = ("job", "build", "result", "started (UTC)", "release", "stages", "failing tests", "description")
RUN_RECORD = ".mlcd/run.json"


def leaf_jobs(server: Any, name: str, depth: int = 0) -> list[str]:
    """``name`` if it has builds, else the jobs under it (folders and multibranch jobs walked down)."""
    info = jenkins_call(f"reading job {name}", lambda: server.get_job_info(name), fix="check --job")
    children = info.get("jobs")
    if children is None or depth >= MAX_DEPTH:
        return [name]
    out: list[str] = []
    for child in children:
        if len(out) >= MAX_JOBS:
            break
        out.extend(leaf_jobs(server, f"{name}/{child['name']}", depth + 1))
    return out[:MAX_JOBS]


def _numbers(server: Any, job: str, last: int) -> list[int]:
    info = jenkins_call(f"reading job {job}", lambda: server.get_job_info(job))
    return [int(b["number"]) for b in (info.get("builds") or [])[:last]]


def archived_builds(server: Any, name: str, last: int) -> list[tuple[str, int, list[str]]]:
    """``(job, number, archived artifact paths)`` of the last builds under ``name``."""
    out = []
    for job in leaf_jobs(server, name):
        for number in _numbers(server, job, last):
            info = _build_info(server, job, number)
            out.append((job, number, [str(a.get("relativePath")) for a in info.get("artifacts") or []]))
    return out


def _build_info(server: Any, job: str, number: int) -> dict[str, Any]:
    info = jenkins_call(f"reading {job} #{number}", lambda: server.get_build_info(job, number))
    return dict(info or {})


def _failures(report: dict[str, Any] | None) -> tuple[dict[str, int], list[dict[str, str]]]:
    if not report:
        return {}, []
    counts = {k: int(report.get(f"{k}Count") or 0) for k in ("pass", "fail", "skip")}
    failing = []
    for suite in report.get("suites") or []:
        for case in suite.get("cases") or []:
            if case.get("status") in FAILING:
                failing.append(
                    {
                        "className": str(case.get("className") or ""),
                        "name": str(case.get("name") or ""),
                        "message": clip(str(case.get("errorDetails") or ""), 500),
                    }
                )
    return counts, failing


def _release(server: Any, job: str, number: int, artifacts: list[str]) -> dict[str, Any] | None:
    """The bundle and each environment's end state, from the run record the build archived."""
    if RUN_RECORD not in artifacts:
        return None
    from mlcd.metrics.sources import artifact

    try:
        data = json.loads(artifact(server, job, number, RUN_RECORD))
    except ValueError:
        return None
    envs = data.get("environments") if isinstance(data, dict) else None
    states = {str(k): str(v.get("state")) for k, v in (envs or {}).items() if isinstance(v, dict)}
    return {"project": data.get("project"), "bundleId": data.get("bundleId"), "environments": states}


def read_build(server: Any, job: str, number: int) -> dict[str, Any]:
    """One build as the report shows it."""
    info = _build_info(server, job, number)
    stages = jenkins_call(f"reading stages of {job} #{number}", lambda: server.get_build_stages(job, number))
    report = jenkins_call(
        f"reading tests of {job} #{number}", lambda: server.get_build_test_report(job, number)
    )
    counts, failing = _failures(report)
    started = info.get("timestamp")
    artifacts = [str(a.get("relativePath")) for a in info.get("artifacts") or []]
    return {
        "job": job,
        "number": number,
        "result": info.get("result") or ("BUILDING" if info.get("building") else None),
        "started": datetime.fromtimestamp(started / 1000, timezone.utc).isoformat() if started else None,
        "durationMs": info.get("duration"),
        "description": clip(str(info.get("description") or ""), 500),
        "url": info.get("url"),
        "stages": [
            {"name": s.get("name"), "status": s.get("status")} for s in (stages or {}).get("stages", [])
        ],
        "tests": counts,
        "failingTests": failing,
        "artifacts": artifacts,
        "release": _release(server, job, number, artifacts),
    }


def _cells(b: dict[str, Any]) -> list[str]:
    stages = " ".join(f"{s['name']}:{s['status']}" for s in b["stages"]) or "-"
    failing = "; ".join(f"{f['name']}: {f['message'][:80]}" for f in b["failingTests"]) or "-"
    rel = b.get("release") or {}
    release = " ".join(
        [str(rel.get("bundleId") or "-")] + [f"{e}:{s}" for e, s in rel.get("environments", {}).items()]
    )
    return [b["job"], f"#{b['number']}", str(b["result"]), str(b["started"] or "-")[:16], release, stages,
            failing, b["description"][:80] or "-"]  # fmt: skip


def _write_page(builds: list[dict[str, Any]], folder: Path, job: str) -> Path:
    page = Page(folder / "index.html", f"Jenkins builds of {job}")
    page.add(f"<h1>Builds of {page.text(job)}</h1>",
             f'<p class="note">Data: {page.link(folder / "builds.json", "builds.json")}.</p>')  # fmt: skip
    rows = []
    for b in builds:
        cells = [td(page.text(c)) for c in _cells(b)]
        url = str(b.get("url") or "")
        if url.startswith(("http://", "https://")):
            cells[1] = td(f'<a href="{html.escape(url)}">#{b["number"]}</a>')
        rows.append((tone(b["result"]), cells))
    page.table(HEADERS, rows)
    return page.write()


def build_report(ctx: StageContext, o: JenkinsOptions) -> StageResult:
    """Read the builds, write ``reports/jenkins/builds.json`` and ``index.html``, print the chosen format."""
    server = connect(o.jenkins_url, o.user_env, o.token_env)
    job = o.job or ""
    builds = [read_build(server, j, n) for j in leaf_jobs(server, job) for n in _numbers(server, j, o.last)]
    folder = ctx.out_dir / "reports" / "jenkins"
    write_json_atomic(folder / "builds.json", {"job": job, "builds": builds})
    page = _write_page(builds, folder, job)
    if o.format == "json":
        print(json.dumps({"job": job, "builds": builds}, indent=2, sort_keys=True))
    elif o.format == "html":
        print(page)
    else:
        print(text_table(HEADERS, [_cells(b) for b in builds]) if builds else f"no build of {job}")
    failed = sum(b["result"] not in ("SUCCESS", None, "BUILDING") for b in builds)
    return StageResult(
        outcome="SUCCESS",
        message=f"{len(builds)} build(s) of {job}, {failed} not successful: {page}",
        reports=[str(page), str(folder / "builds.json")],
        details={"builds": len(builds), "notSuccessful": failed},
    )
