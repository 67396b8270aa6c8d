"""Test reports: JUnit XML (for Jenkins `junit`) and a self-contained HTML page.

One ``testcase`` per scenario (or per check). A failed or timed-out case carries a
``failure``/``error`` element naming the failing step and the error, and a
``system-out`` with the run id, the attempts and an excerpt of the run log.
Retries of flaky scenarios are written the way Maven Surefire does
(``flakyFailure`` when a retry passed, ``rerunFailure`` when every attempt
failed), so a retry is never hidden. The HTML page has inline CSS only: no
scripts, fonts or links to anything outside the file.
"""

from __future__ import annotations

import html
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from mlcd.redact import redact

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
OUTCOMES = ("SUCCESS", "WARNING", "FAILED", "ABORTED", "TIMEOUT")


@dataclass
class Attempt:
    """One run of a scenario (there are several when a flaky scenario is retried)."""

    run_id: str | None
    outcome: str
    duration_s: float
    failing_step: str | None
    error_message: str | None


@dataclass
class CaseResult:
    """The result of one scenario (or one check) as reported."""

    scenario_id: str
    outcome: str  # SUCCESS | WARNING | FAILED | ABORTED | TIMEOUT
    passed: bool
    duration_s: float
    run_id: str | None
    failing_step: str | None
    error_type: str | None
    error_message: str | None
    log_excerpt: str
    attempts: list[Attempt] = field(default_factory=list)
    flaky_retries: int = 0


def _clean(text: str | None) -> str:
    """Redacted text with characters XML cannot hold removed."""
    return _XML_BAD.sub("", redact(text or ""))


def _summary_lines(case: CaseResult) -> list[str]:
    lines = [f"scenario: {case.scenario_id}", f"outcome: {case.outcome}"]
    if case.run_id:
        lines.append(f"run id: {case.run_id}")
    if case.failing_step:
        lines.append(f"failing step: {case.failing_step}")
    if case.error_message:
        lines.append(f"error: {case.error_message}")
    if case.outcome == "WARNING" and case.passed:
        lines.append("WARNING counted as a pass (warning: pass)")
    if len(case.attempts) > 1 or case.flaky_retries:
        lines.append(f"attempts: {len(case.attempts)} (flaky retries used: {case.flaky_retries})")
        for n, att in enumerate(case.attempts, 1):
            step = f", step {att.failing_step}" if att.failing_step else ""
            err = f": {att.error_message}" if att.error_message else ""
            lines.append(f"  #{n} run {att.run_id or '-'} {att.outcome} in {att.duration_s:.1f}s{step}{err}")
    return lines


def write_junit(
    path: Path, suite_name: str, classname: str, cases: list[CaseResult], properties: dict[str, str]
) -> Path:
    """Write a JUnit XML file (``testsuites/testsuite/testcase``) and return its path."""
    failures = sum(1 for c in cases if not c.passed and c.outcome not in ("ABORTED", "TIMEOUT"))
    errors = sum(1 for c in cases if not c.passed and c.outcome in ("ABORTED", "TIMEOUT"))
    total_time = sum(c.duration_s for c in cases)
    root = etree.Element(
        "testsuites",
        name=_clean(suite_name),
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        time=f"{total_time:.3f}",
    )
    suite = etree.SubElement(
        root,
        "testsuite",
        name=_clean(suite_name),
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{total_time:.3f}",
        timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=_clean(socket.gethostname()),
    )
    props = etree.SubElement(suite, "properties")
    for key, value in properties.items():
        etree.SubElement(props, "property", name=_clean(str(key)), value=_clean(str(value)))
    for case in cases:
        tc = etree.SubElement(
            suite,
            "testcase",
            classname=_clean(classname),
            name=_clean(case.scenario_id),
            time=f"{case.duration_s:.3f}",
        )
        details = "\n".join(_summary_lines(case))
        if not case.passed:
            tag = "error" if case.outcome in ("ABORTED", "TIMEOUT") else "failure"
            message = case.error_message or f"scenario ended {case.outcome}"
            if case.failing_step:
                message = f"step {case.failing_step}: {message}"
            el = etree.SubElement(
                tc, tag, message=_clean(message), type=_clean(case.error_type or case.outcome)
            )
            el.text = _clean(details)
            retry_tag = "rerunFailure" if case.outcome not in ("ABORTED", "TIMEOUT") else "rerunError"
        else:
            retry_tag = "flakyFailure" if case.outcome not in ("ABORTED", "TIMEOUT") else "flakyError"
        # earlier failed attempts of a retried scenario
        for att in case.attempts[:-1] if len(case.attempts) > 1 else []:
            if att.outcome in ("SUCCESS",):
                continue
            tag = retry_tag
            if case.passed:
                tag = "flakyError" if att.outcome in ("ABORTED", "TIMEOUT") else "flakyFailure"
            el = etree.SubElement(
                tc, tag, message=_clean(att.error_message or f"attempt ended {att.outcome}"), type=att.outcome
            )
            el.text = _clean(f"run id: {att.run_id or '-'}; failing step: {att.failing_step or '-'}")
        out = etree.SubElement(tc, "system-out")
        excerpt = _clean(case.log_excerpt)
        out.text = _clean(details) + ("\n--- log excerpt ---\n" + excerpt if excerpt else "")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    os.replace(tmp, path)
    return path


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#1d2733}
h1{font-size:1.4em} table{border-collapse:collapse;width:100%;margin-top:1em}
th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f3f5f7} .SUCCESS{background:#dafbe1} .WARNING{background:#fff8c5}
.FAILED,.TIMEOUT,.ABORTED{background:#ffebe9} pre{white-space:pre-wrap;font-size:.85em;margin:0}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px} dt{font-weight:600}
.summary{font-weight:600;margin-top:.5em}
"""


def write_html(path: Path, title: str, cases: list[CaseResult], meta: dict[str, str]) -> Path:
    """Write a self-contained HTML report (inline CSS, no external URL) and return its path."""
    esc = html.escape

    def text(value: str | None) -> str:
        return esc(redact(value or ""))

    passed = sum(1 for c in cases if c.passed)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{text(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{text(title)}</h1>",
        f'<p class="summary">{passed} of {len(cases)} passed</p>',
        '<dl class="meta">',
    ]
    for key, value in meta.items():
        parts.append(f"<dt>{text(key)}</dt><dd>{text(value)}</dd>")
    parts.append("</dl>")
    parts.append(
        "<table><thead><tr><th>scenario</th><th>outcome</th><th>result</th><th>duration</th>"
        "<th>run id</th><th>failing step</th><th>error</th>"
        "<th>attempts</th><th>log excerpt</th></tr></thead><tbody>"
    )
    for case in cases:
        attempts = "<br>".join(
            f"{text(a.run_id or '-')} {text(a.outcome)} ({a.duration_s:.1f}s)" for a in case.attempts
        )
        log = text(case.log_excerpt)
        log_cell = f"<details><summary>log</summary><pre>{log}</pre></details>" if log else ""
        parts.append(
            f'<tr class="{esc(case.outcome if case.outcome in OUTCOMES else "FAILED")}">'
            f"<td>{text(case.scenario_id)}</td><td>{text(case.outcome)}</td>"
            f"<td>{'pass' if case.passed else 'FAIL'}</td><td>{case.duration_s:.1f}s</td>"
            f"<td>{text(case.run_id or '')}</td><td>{text(case.failing_step or '')}</td>"
            f"<td>{text(case.error_message or '')}</td><td>{attempts}</td><td>{log_cell}</td></tr>"
        )
    parts.append("</tbody></table></body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
