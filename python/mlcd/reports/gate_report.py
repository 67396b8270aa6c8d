"""The HTML report of a test or smoke gate: one row per scenario, its log folded in ``<details>``.

Written next to its JUnit XML (``reports/<env>/report.html``, ``smoke.html``,
``smoke-after-rollback.html``) with ``mlcd.css`` beside it; see :mod:`mlcd.reports.page`
for what keeps it readable under Jenkins' Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlcd.reports.page import Page, td, tone
from mlcd.reports.results import OUTCOMES, CaseResult


@dataclass(frozen=True)
class Chart:
    """A chart image file (SVG or PNG) written next to the report, shown with ``<img>``."""

    path: Path
    alt: str
    caption: str | None = None


def write_html(
    path: Path,
    title: str,
    cases: list[CaseResult],
    meta: dict[str, str],
    charts: Sequence[Chart] = (),
) -> Path:
    """Write the HTML report of ``cases`` (``mlcd.css`` next to it, nothing inline); return its path."""
    page = Page(path, title)
    passed = sum(1 for c in cases if c.passed)
    release_page = page.root / "reports" / "index.html"
    if release_page.is_file() and release_page.resolve() != page.path.resolve():
        page.add(f'<nav class="back">{page.link(release_page, "release page")}</nav>')
    failed = len(cases) - passed
    verdict = f"{passed} of {len(cases)} passed" + (f", {failed} failed" if failed else "")
    page.add(
        f"<h1>{page.text(title)}</h1>",
        f'<p class="verdict {tone("SUCCESS" if not failed else "FAILED")}">{verdict}</p>',
        '<dl class="meta">',
        *(f"<dt>{page.text(key)}</dt><dd>{page.text(value)}</dd>" for key, value in meta.items()),
        "</dl>",
    )
    rows = [_row(page, case) for case in cases]
    page.table(
        ["scenario", "outcome", "result", "duration", "run id", "failing step", "error", "attempts", "log"],
        rows,
    )
    for chart in charts:
        page.add(page.chart(chart.path, chart.alt, chart.caption))
    return page.write()


def _row(page: Page, case: CaseResult) -> tuple[str, list[str]]:
    outcome = case.outcome if case.outcome in OUTCOMES else "FAILED"
    attempts = "<br>".join(
        f"{page.text(a.run_id or '-')} {page.text(a.outcome)} ({a.duration_s:.1f}s)" for a in case.attempts
    )
    log = page.text(case.log_excerpt)
    log_cell = f"<details><summary>log</summary><pre>{log}</pre></details>" if log else ""
    # a WARNING counted as a failure is marked as one
    row_tone = tone(outcome) if case.passed else "tone-bad"
    cells = [
        td(page.text(case.scenario_id)),
        td(page.text(outcome), "outcome"),
        td("pass" if case.passed else "FAIL"),
        td(f"{case.duration_s:.1f}s", "num"),
        td(page.text(case.run_id or "")),
        td(page.text(case.failing_step or "")),
        td(page.text(case.error_message or "")),
        td(attempts),
        td(log_cell),
    ]
    return row_tone, cells
