"""JUnit XML for Jenkins' ``junit`` step: one ``testcase`` per scenario (or per check).

A failed or timed-out case carries a ``failure``/``error`` element naming the
failing step and the error, and a ``system-out`` with the run id, the attempts
and an excerpt of the run log. Retries of flaky scenarios are written the way
Maven Surefire does (``flakyFailure`` when a retry passed, ``rerunFailure`` when
every attempt failed), so a retry is never hidden.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from mlcd.redact import redact
from mlcd.reports.results import CaseResult

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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
        _testcase(suite, classname, case)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    os.replace(tmp, path)
    return path


def _testcase(suite: etree._Element, classname: str, case: CaseResult) -> None:
    """One ``testcase``: its failure or error, the earlier attempts of a retry, its ``system-out``."""
    tc = etree.SubElement(
        suite, "testcase", classname=_clean(classname), name=_clean(case.scenario_id),
        time=f"{case.duration_s:.3f}",
    )  # fmt: skip
    details = "\n".join(_summary_lines(case))
    stopped = case.outcome in ("ABORTED", "TIMEOUT")
    if not case.passed:
        message = case.error_message or f"scenario ended {case.outcome}"
        if case.failing_step:
            message = f"step {case.failing_step}: {message}"
        el = etree.SubElement(
            tc, "error" if stopped else "failure", message=_clean(message),
            type=_clean(case.error_type or case.outcome),
        )  # fmt: skip
        el.text = _clean(details)
    # earlier failed attempts of a retried scenario
    for att in case.attempts[:-1]:
        if att.outcome == "SUCCESS":
            continue
        if case.passed:
            tag = "flakyError" if att.outcome in ("ABORTED", "TIMEOUT") else "flakyFailure"
        else:
            tag = "rerunError" if stopped else "rerunFailure"
        el = etree.SubElement(
            tc, tag, message=_clean(att.error_message or f"attempt ended {att.outcome}"), type=att.outcome
        )
        el.text = _clean(f"run id: {att.run_id or '-'}; failing step: {att.failing_step or '-'}")
    out = etree.SubElement(tc, "system-out")
    excerpt = _clean(case.log_excerpt)
    out.text = _clean(details) + ("\n--- log excerpt ---\n" + excerpt if excerpt else "")
