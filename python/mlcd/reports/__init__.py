"""mlcd's reports: JUnit XML for Jenkins, HTML pages readable under Jenkins' Content-Security-Policy.

* :mod:`mlcd.reports.junit`: the JUnit XML of a gate or of the release checks;
* :mod:`mlcd.reports.gate_report`: the HTML report of a test or smoke gate;
* :mod:`mlcd.reports.release_page`: ``reports/index.html``, the whole run at a glance;
* :mod:`mlcd.reports.page`: what the pages share (stylesheet file, relative links, chart images).
"""

from __future__ import annotations

from mlcd.reports.gate_report import Chart, write_html
from mlcd.reports.junit import write_junit
from mlcd.reports.page import relative_to_page, shown_path
from mlcd.reports.release_page import refresh_release_page, write_release_page
from mlcd.reports.results import OUTCOMES, Attempt, CaseResult

__all__ = [
    "OUTCOMES",
    "Attempt",
    "CaseResult",
    "Chart",
    "refresh_release_page",
    "relative_to_page",
    "shown_path",
    "write_html",
    "write_junit",
    "write_release_page",
]
