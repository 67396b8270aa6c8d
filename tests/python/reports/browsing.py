"""A headless Debian Chromium (Playwright, system browser) and a local server that answers like Jenkins.

Jenkins serves archived artifacts with :data:`JENKINS_CSP`; :class:`ReportServer`
serves a folder with that header, with it minus ``sandbox`` (axe-core needs
scripts to run; the style and image rules stay), or with no header at all.
Screenshots go to ``test-artifacts/reports/`` (gitignored; ``MLCD_TEST_ARTIFACTS``
overrides the root).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from typing import Any

JENKINS_CSP = "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'self';"
CSP_WITHOUT_SANDBOX = "default-src 'none'; img-src 'self'; style-src 'self';"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("MLCD_TEST_ARTIFACTS") or REPO / "test-artifacts") / "reports"

# what a page looks like: these properties of the first element matching each selector
STYLE_PROPERTIES = (
    "color", "background-color", "font-family", "font-size", "font-weight", "display",
    "border-top-width", "border-left-width", "border-left-color", "padding-top", "margin-top",
)  # fmt: skip
KEY_SELECTORS = (
    "body", "h1", "h2", "p.verdict", "table", "th", "td", "tr.tone-bad td", "tr.tone-bad td:first-child",
    "tr.tone-ok td", "td.outcome", "dl.meta", "dl.meta dt", "details > summary", "a", "pre",
    "figure.chart img",
)  # fmt: skip

COMPUTED_STYLES_JS = """([selectors, props]) => {
  const out = {};
  for (const sel of selectors) {
    const el = document.querySelector(sel);
    if (!el) continue;
    const cs = getComputedStyle(el);
    out[sel] = Object.fromEntries(props.map(p => [p, cs.getPropertyValue(p)]));
  }
  return out;
}"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    csp: str | None = None

    def end_headers(self) -> None:
        if self.csp:
            self.send_header("Content-Security-Policy", self.csp)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # Jenkins has one; the browser asks for it on every page
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ReportServer:
    """Serves ``root`` on a free loopback port, sending ``csp`` (None: no policy) with every answer."""

    def __init__(self, root: Path, csp: str | None) -> None:
        handler = type("Handler", (_Handler,), {"csp": csp})
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        self.root = root
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, page: Path) -> str:
        """The URL of a file under the root."""
        return f"http://127.0.0.1:{self.httpd.server_port}/{page.relative_to(self.root).as_posix()}"

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def launch_chromium(playwright: Any, user_data_dir: Path) -> Any:
    """A persistent context of the system Chromium (never a downloaded browser), fresh profile."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
    )


class PageLoad:
    """One page load: console messages and every response the page caused."""

    def __init__(self, context: Any, url: str) -> None:
        self.page = context.new_page()
        self.console: list[str] = []
        self.failed: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        self.page.on(
            "response", lambda r: self.failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None
        )
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, f"{url}: {response and response.status}"

    def styles(self) -> dict[str, dict[str, str]]:
        """Computed styles of :data:`KEY_SELECTORS` (those present)."""
        result: dict[str, dict[str, str]] = self.page.evaluate(
            COMPUTED_STYLES_JS, [list(KEY_SELECTORS), list(STYLE_PROPERTIES)]
        )
        return result

    def screenshot(self, name: str) -> Path:
        """A full-page screenshot under :data:`ARTIFACTS`."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        """Close the tab."""
        self.page.close()
