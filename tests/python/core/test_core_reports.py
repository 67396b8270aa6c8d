"""JUnit XML and HTML reports, read back the way Jenkins and a person would."""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from mlcd.redact import register_secret
from mlcd.reports import Attempt, CaseResult, write_html, write_junit
from mlcd.reports.page import stylesheet_text


def cases() -> list[CaseResult]:
    return [
        CaseResult("TEST_PASS", "SUCCESS", True, 1.5, "run-1", None, None, None, "all good", [], 0),
        CaseResult(
            "TEST_FAIL",
            "FAILED",
            False,
            2.0,
            "run-2",
            "quality",
            "StepFailed",
            "quality below threshold <0.7>",
            "line1\nboom \x07 here",
            [Attempt("run-2", "FAILED", 2.0, "quality", "quality below threshold <0.7>")],
            0,
        ),
        CaseResult(
            "TEST_FLAKY",
            "SUCCESS",
            True,
            3.0,
            "run-4",
            None,
            None,
            None,
            "ok",
            [
                Attempt("run-3", "FAILED", 1.0, "io", "connection reset"),
                Attempt("run-4", "SUCCESS", 2.0, None, None),
            ],
            1,
        ),
        CaseResult("TEST_WARN", "WARNING", True, 1.0, "run-5", None, None, None, "", [], 0),
        CaseResult(
            "TEST_SLOW", "TIMEOUT", False, 60.0, "run-6", "sleep", "Timeout", "deadline 60s", "", [], 0
        ),
    ]


def test_junit_parses_back_with_failures_and_details(tmp_path: Path) -> None:
    path = write_junit(tmp_path / "r" / "tests.xml", "test", "mlcd.test.SAMPLE", cases(), {"bundleId": "B1"})
    root = etree.parse(str(path)).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("tests") == "5" and suite.get("failures") == "1" and suite.get("errors") == "1"
    assert suite.find("properties/property").attrib == {"name": "bundleId", "value": "B1"}
    by_name = {tc.get("name"): tc for tc in suite.findall("testcase")}
    assert list(by_name) == ["TEST_PASS", "TEST_FAIL", "TEST_FLAKY", "TEST_WARN", "TEST_SLOW"]
    assert all(tc.get("classname") == "mlcd.test.SAMPLE" for tc in by_name.values())
    assert by_name["TEST_PASS"].find("failure") is None
    failure = by_name["TEST_FAIL"].find("failure")
    assert failure is not None
    assert failure.get("message") == "step quality: quality below threshold <0.7>"
    assert failure.get("type") == "StepFailed"
    out = by_name["TEST_FAIL"].findtext("system-out")
    assert "run id: run-2" in out and "failing step: quality" in out and "boom  here" in out
    flaky = by_name["TEST_FLAKY"]
    assert flaky.find("failure") is None
    assert flaky.find("flakyFailure").get("message") == "connection reset"
    assert "flaky retries used: 1" in flaky.findtext("system-out")
    assert "WARNING counted as a pass" in by_name["TEST_WARN"].findtext("system-out")
    assert by_name["TEST_SLOW"].find("error").get("type") == "Timeout"


def test_junit_redacts_secrets(tmp_path: Path) -> None:
    register_secret("api-key-999888777")
    case = CaseResult(
        "T", "FAILED", False, 1, None, None, None, "bad key api-key-999888777", "api-key-999888777"
    )
    text = write_junit(tmp_path / "t.xml", "s", "c", [case], {}).read_text()
    assert "api-key-999888777" not in text


def test_html_links_only_its_stylesheet_and_escapes(tmp_path: Path) -> None:
    path = write_html(tmp_path / "report.html", "SAMPLE on test", cases(), {"bundle": "B1", "node": "x"})
    text = path.read_text()
    assert "<script" not in text.lower() and "<style" not in text.lower() and "style=" not in text
    assert re.findall(r"(?:src|href)\s*=\s*\"([^\"]*)\"", text) == ["mlcd.css"]
    assert (tmp_path / "mlcd.css").read_text() == stylesheet_text()
    assert "url(" not in stylesheet_text() and "@import" not in stylesheet_text()
    assert "http" not in text and "data:" not in text
    assert "quality below threshold &lt;0.7&gt;" in text
    assert "3 of 5 passed, 2 failed" in text
    assert "run-6" in text and "TIMEOUT" in text
    rows = re.findall(r'<tr class="([^"]+)"><td>([A-Z_]+)</td>', text)
    assert rows == [("tone-ok", "TEST_PASS"), ("tone-bad", "TEST_FAIL"), ("tone-ok", "TEST_FLAKY"),
                    ("tone-warn", "TEST_WARN"), ("tone-bad", "TEST_SLOW")]  # fmt: skip
    assert "<details><summary>log</summary><pre>line1\nboom  here</pre></details>" in text
