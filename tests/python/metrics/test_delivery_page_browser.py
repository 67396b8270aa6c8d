"""The delivery metrics page opened in Chromium as Jenkins serves it (CSP). Slow: a browser."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlcd.cli import main
from reports.browsing import CHROMIUM, JENKINS_CSP, PageLoad, ReportServer, launch_chromium


@pytest.mark.slow
def test_delivery_page_renders_with_its_chart_under_jenkins_csp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"playwright is not installed ({exc}): `pip install -e '.[dev]'`")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (scripts/system-deps.sh)")
    now = datetime.now(timezone.utc)
    trail = tmp_path / "run"
    trail.mkdir()
    (trail / "run.json").write_text('{"project": "CHURN"}')
    records = [
        {"time": (now - timedelta(minutes=m)).isoformat(), "operation": "deployment", "outcome": o,
         "environment": "prod", "bundleId": f"b{m}"}
        for m, o in ((50, "SUCCEEDED"), (20, "FAILED_ROLLED_BACK"), (5, "SUCCEEDED"))
    ]  # fmt: skip
    (trail / "audit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    assert main(["report", "delivery", "--audit", str(trail), "--out-dir", str(out)]) == 0
    page = out / "reports" / "delivery" / "index.html"
    server = ReportServer(out, JENKINS_CSP)
    manager = sync_playwright().start()
    context = launch_chromium(manager, tmp_path / "profile")
    try:
        load = PageLoad(context, server.url(page))
        widths = load.page.evaluate("() => [...document.images].map(i => i.naturalWidth)")
        header = load.page.evaluate("() => getComputedStyle(document.querySelector('th')).backgroundColor")
        rows = load.page.evaluate("() => [...document.querySelectorAll('tbody tr')].map(r => r.className)")
        load.close()
    finally:
        context.close()
        manager.stop()
        server.stop()
    assert widths and all(w > 0 for w in widths)  # the chart, a separate file, loads under the policy
    assert header not in ("rgba(0, 0, 0, 0)", "transparent")  # the stylesheet applies
    assert rows == ["tone-bad"]  # a failed deployment marks the row
    assert not [m for m in load.console if "Content Security Policy" in m], load.console
    assert not load.failed, load.failed
