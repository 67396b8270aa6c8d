"""The HTML reports as a CI admin sees them: in Chromium, served with Jenkins' Content-Security-Policy.

The demo (scripts/demo.py) really runs its three releases with `mlcd run` on the
stand-in nodes: a good one (test and an approved prod), one whose tests fail on
test (rolled back there, smoke re-run) and one whose smoke check fails on prod
(rolled back there, verified). Every HTML file they leave is loaded from a local
server that sends Jenkins' header. The browser is Debian's chromium driven by
Playwright; when it cannot start, these tests fail with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlcd.reports import CaseResult, Chart, write_html
from reports.browsing import (
    ARTIFACTS,
    CHROMIUM,
    CSP_WITHOUT_SANDBOX,
    JENKINS_CSP,
    REPO,
    PageLoad,
    ReportServer,
    launch_chromium,
)

CHART_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="60" viewBox="0 0 240 60">'
    '<rect x="0" y="10" width="180" height="16" fill="#0550ae"/>'
    '<rect x="0" y="34" width="90" height="16" fill="#cf222e"/></svg>'
)


@dataclass
class Releases:
    """Where the demo's releases left their out dirs, and the folder served to the browser."""

    root: Path
    good: Path
    failed: Path  # tests fail on test
    broke_prod: Path  # smoke fails on prod
    chart_page: Path
    machine_paths: list[str]

    def pages(self) -> list[Path]:
        """Every HTML file the releases (and the chart example) wrote."""
        return sorted(p for p in self.root.rglob("*.html") if "/nodes/" not in p.as_posix())


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Releases]:
    """The demo's three releases, each in its own out dir, plus a gate report with a chart."""
    root = tmp_path_factory.mktemp("browser")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # screenshots of this session only
    serve = root / "served"
    demo_out = serve / "demo-out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSS_", "MLCD_", "BUILD_"))}
    env["MLCD_LOCK_DIR"] = str(root / "locks")  # not the user's shared lock directory
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--out-dir", str(demo_out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for n in (1, 2, 3):
        page = demo_out / f"release-{n}" / "reports" / "index.html"
        assert f"page   {page.relative_to(REPO) if page.is_relative_to(REPO) else page}" in done.stdout
    # a gate report with a chart image next to it (as later reports will draw them)
    chart_dir = serve / "chart" / "reports" / "test"
    chart_dir.mkdir(parents=True)
    (chart_dir / "durations.svg").write_text(CHART_SVG, encoding="utf-8")
    case = CaseResult("TEST_A", "SUCCESS", True, 1.0, "r1", None, None, None, "", [], 0)
    chart_page = write_html(
        chart_dir / "report.html", "chart example", [case], {"project": "SAMPLE"},
        charts=[Chart(chart_dir / "durations.svg", "test durations per scenario", "durations")],
    )  # fmt: skip
    yield Releases(
        serve, demo_out / "release-1", demo_out / "release-2", demo_out / "release-3", chart_page,
        [str(root), str(REPO), str(Path.home())],
    )  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium context (fresh profile); the test FAILS, with the reason, if it cannot start."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"playwright is not installed ({exc}): `pip install -e '.[dev]'`")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (scripts/system-deps.sh)")
    manager = sync_playwright().start()
    try:
        context = launch_chromium(manager, tmp_path_factory.mktemp("chromium-profile"))
    except Exception as exc:
        manager.stop()
        pytest.fail(f"headless chromium could not start: {type(exc).__name__}: {exc}")
    yield context
    context.close()
    manager.stop()


@pytest.fixture(scope="module")
def servers(releases: Releases) -> Iterator[dict[str, ReportServer]]:
    """The served folder with Jenkins' policy, with it minus ``sandbox`` (for axe-core) and without any."""
    running = {
        "jenkins": ReportServer(releases.root, JENKINS_CSP),
        "no-sandbox": ReportServer(releases.root, CSP_WITHOUT_SANDBOX),
        "no-csp": ReportServer(releases.root, None),
    }
    yield running
    for server in running.values():
        server.stop()


def _name(releases: Releases, page: Path) -> str:
    return re.sub(r"[^\w.-]+", "_", page.relative_to(releases.root).with_suffix("").as_posix())


def test_every_report_is_written_for_jenkins_csp_and_names_no_machine_path(releases: Releases) -> None:
    pages = releases.pages()
    names = {p.relative_to(releases.root).as_posix() for p in pages}
    assert {f"demo-out/release-{n}/reports/index.html" for n in (1, 2, 3)} <= names
    assert {"demo-out/release-1/reports/prod/smoke.html", "demo-out/release-2/reports/test/report.html",
            "demo-out/release-2/reports/test/smoke-after-rollback.html",
            "demo-out/release-3/reports/prod/smoke-after-rollback.html"} <= names  # fmt: skip
    for page in pages:
        text = page.read_text(encoding="utf-8")
        doc = lxml_html.fromstring(text)
        where = page.relative_to(releases.root)
        assert not doc.xpath("//style | //script | //iframe | //object | //embed"), where
        assert not doc.xpath("//*[@style]"), f"{where}: style attribute"
        values = [str(a).strip().lower() for a in doc.xpath("//@*")]
        assert not [v for v in values if v.startswith(("data:", "javascript:"))], where
        # a data: URI in an attribute or a CSS url(), not the word "Data:" in the page's text
        data_uri = r"=\s*[\"']?\s*data:|url\(\s*[\"']?\s*data:"
        assert not re.search(r"<style|style\s*=|<script|" + data_uri, text, re.IGNORECASE), where
        assert not doc.xpath("//@*[starts-with(name(), 'on')]"), f"{where}: event handler"
        for machine_path in releases.machine_paths:
            assert machine_path not in text, f"{where} names {machine_path}"
        assert (page.parent / "mlcd.css").is_file()
        assert doc.xpath("//link[@rel='stylesheet']/@href") == ["mlcd.css"]


def test_pages_look_the_same_under_jenkins_csp_as_without_it(
    releases: Releases, browser: Any, servers: dict[str, ReportServer]
) -> None:
    for page in releases.pages():
        name = _name(releases, page)
        strict = PageLoad(browser, servers["jenkins"].url(page))
        loose = PageLoad(browser, servers["no-csp"].url(page))
        try:
            assert not [m for m in strict.console if "Content Security Policy" in m or "error" in m[:6]], name
            assert not strict.failed, f"{name}: {strict.failed}"
            styled = strict.styles()
            # the stylesheet is applied (not just equally unstyled in both)
            assert styled["th"]["background-color"] == "rgb(243, 245, 247)", name
            assert styled["td"]["border-top-width"] == "1px", name
            assert styled == loose.styles(), name
            strict.screenshot(f"{name}.jenkins-csp")
            loose.screenshot(f"{name}.no-csp")
        finally:
            strict.close()
            loose.close()


def _row_style(load: PageLoad, text: str) -> dict[str, str]:
    style: dict[str, str] = load.page.evaluate(
        """(text) => {
             const row = [...document.querySelectorAll('tbody tr')].find(r => r.textContent.includes(text));
             if (!row) return {};
             const cell = getComputedStyle(row.cells[0]);
             return {cls: row.className, background: cell.backgroundColor, edge: cell.borderLeftWidth,
                     edgeColor: cell.borderLeftColor};
           }""",
        text,
    )
    return style


def test_failed_rows_are_visibly_marked(
    releases: Releases, browser: Any, servers: dict[str, ReportServer]
) -> None:
    report = PageLoad(browser, servers["jenkins"].url(releases.failed / "reports" / "test" / "report.html"))
    index = PageLoad(browser, servers["jenkins"].url(releases.failed / "reports" / "index.html"))
    smoke = PageLoad(browser, servers["jenkins"].url(releases.broke_prod / "reports" / "prod" / "smoke.html"))
    prod_index = PageLoad(browser, servers["jenkins"].url(releases.broke_prod / "reports" / "index.html"))
    try:
        failed = _row_style(report, "TEST_MODEL_PERFORMANCE")
        passed = _row_style(report, "TEST_DATA_QUALITY")
        assert failed["cls"] == "tone-bad" and passed["cls"] == "tone-ok"
        assert failed["background"] == "rgb(255, 235, 233)" != passed["background"]
        assert failed["edge"] == "5px" and failed["edgeColor"] == "rgb(207, 34, 46)"
        assert passed["edge"] == "1px"
        assert _row_style(smoke, "TEST_SMOKE")["background"] == "rgb(255, 235, 233)"
        # on the release pages: the failed stage, the verdict, and the verified rollback
        for page, env in ((index, "test"), (prod_index, "prod")):
            stage = _row_style(page, f"failed on {env}")
            assert stage["cls"] == "tone-bad" and stage["background"] == "rgb(255, 235, 233)"
            assert _row_style(page, "verified: CHURN_r1 active")["cls"] == "tone-ok"
            verdict = page.page.evaluate(
                "() => getComputedStyle(document.querySelector('p.verdict')).backgroundColor"
            )
            assert verdict == "rgb(255, 235, 233)"
            assert "ROLLED_BACK" in page.page.inner_text("p.verdict")
        # the fix line names the report relative to the page
        assert "open test/report.html for the failing step" in index.page.inner_text("p.summary")
    finally:
        for load in (report, index, smoke, prod_index):
            load.close()


def test_every_link_and_image_resolves(
    releases: Releases, browser: Any, servers: dict[str, ReportServer]
) -> None:
    checked: set[str] = set()
    for page in releases.pages():
        load = PageLoad(browser, servers["jenkins"].url(page))
        try:
            targets: list[str] = load.page.evaluate(
                "() => [...document.querySelectorAll('a[href], link[href], img[src]')]"
                ".map(e => e.href || e.src)"
            )
            broken_images = load.page.evaluate(
                "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
            )
            assert not broken_images, f"{page}: {broken_images}"
            for url in targets:
                assert url.startswith(servers["jenkins"].url(releases.root / "x")[:-1]), f"{page}: {url}"
                if url in checked:
                    continue
                answer = load.page.request.get(url)
                assert answer.status == 200, f"{page}: {url} answered {answer.status}"
                checked.add(url)
        finally:
            load.close()
    assert any(u.endswith("/durations.svg") for u in checked)
    assert any(u.endswith("/scenario-durations.png") for u in checked)
    assert any(u.endswith("/report.html") for u in checked)
    assert any(u.endswith("/audit.jsonl") for u in checked)


def test_no_serious_or_critical_accessibility_violation(
    releases: Releases, browser: Any, servers: dict[str, ReportServer]
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    problems = []
    for page in releases.pages():
        # Jenkins' rules for styles and images; axe-core itself needs scripts, which `sandbox` forbids
        load = PageLoad(browser, servers["no-sandbox"].url(page))
        try:
            result = axe.run(load.page)
            for violation in result.response["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    where = page.relative_to(releases.root)
                    impact = violation["impact"]
                    problems.append(f"{where}: {violation['id']} ({impact}): {violation['help']}")
        finally:
            load.close()
    assert not problems, "\n".join(problems)


def test_the_release_page_chart_is_drawn_under_jenkins_csp(
    releases: Releases, browser: Any, servers: dict[str, ReportServer]
) -> None:
    """The matplotlib chart of each demo release: a PNG file, loaded and shown under Jenkins' policy."""
    for out in (releases.good, releases.failed, releases.broke_prod):
        page = out / "reports" / "index.html"
        assert (out / "reports" / "scenario-durations.png").is_file(), page
        load = PageLoad(browser, servers["jenkins"].url(page))
        try:
            assert not [m for m in load.console if "Content Security Policy" in m], load.console
            shown = load.page.evaluate(
                "() => [...document.querySelectorAll('figure.chart img')].map(i => ["
                "i.getAttribute('src'), i.naturalWidth, i.getBoundingClientRect().height, i.alt])"
            )
            assert len(shown) == 1, shown
            src, width, height, alt = shown[0]
            assert src == "scenario-durations.png" and width > 300 and height > 50, shown[0]
            assert alt.startswith("Bar chart of ") and "TEST_SMOKE" in load.page.inner_text("body")
            load.screenshot(f"{_name(releases, page)}.chart")
        finally:
            load.close()
