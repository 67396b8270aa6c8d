"""What every mlcd HTML page shares, so that each renders under Jenkins' default Content-Security-Policy.

Jenkins serves archived files with ``sandbox allow-same-origin; default-src 'none';
img-src 'self'; style-src 'self';``. So a page here has no ``<style>``, no ``style=``
attribute, no ``<script>`` and no ``data:`` URI: its look comes from ``mlcd.css``,
written next to it; charts are image files next to it, referenced with ``<img>``;
logs fold with ``<details>``. Every link is relative to the page, and any path of
the machine that wrote it (e.g. in an error's fix line) is shown relative to the page.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from mlcd.redact import redact

STYLESHEET = "mlcd.css"
CHART_SUFFIXES = (".svg", ".png")

# absolute paths, and relative ones with a slash; never the path part of a URL (after ``:``, ``/`` or a word)
_ABSOLUTE = re.compile(r"(?<![\w:/.~@%-])/[^\s'\"<>()\[\]{},;|]+")
_RELATIVE = re.compile(r"(?<![\w:/.~@%-])[\w.~-]+(?:/[\w.~@+-]+)+/?")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TONES = {
    "ok": ("SUCCESS", "SUCCEEDED", "DEPLOYED", "APPROVED", "pass"),
    "warn": ("WARNING", "NOOP", "SKIPPED"),
}


def tone(outcome: str | None) -> str:
    """The colour class of an outcome: ``tone-ok``, ``tone-warn``, ``tone-bad`` or ``tone-none``."""
    if not outcome:
        return "tone-none"
    for name, outcomes in _TONES.items():
        if outcome in outcomes:
            return f"tone-{name}"
    return "tone-bad"


def out_root(page: Path) -> Path:
    """The out dir a page belongs to: the parent of its nearest ``reports`` folder (else its own folder)."""
    page = Path(os.path.abspath(page))
    for folder in page.parents:
        if folder.name == "reports":
            return folder.parent
    return page.parent


def relative_to_page(text: str, page: Path, root: Path | None = None) -> str:
    """``text`` with every path under ``root`` (default: the page's out dir) made relative to ``page``.

    Absolute paths under the current directory (e.g. the config file in a Jenkins
    workspace) are shown relative to it; other text is unchanged.
    """
    page_dir = Path(os.path.abspath(page)).parent
    base = os.path.abspath(root if root is not None else out_root(page))
    cwd = os.getcwd()

    def under(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip("/") + "/")

    def absolute(match: re.Match[str]) -> str:
        token = match.group(0)
        trail = len(token) - len(token.rstrip(".:"))
        path = os.path.normpath(token[: len(token) - trail])
        if under(path, base):
            return os.path.relpath(path, page_dir) + token[len(token) - trail :]
        if under(path, cwd) and path != cwd:
            return os.path.relpath(path, cwd) + token[len(token) - trail :]
        return token

    def relative(match: re.Match[str]) -> str:
        token = match.group(0)
        path = os.path.abspath(token)
        if under(path, base) and os.path.exists(path):
            return os.path.relpath(path, page_dir)
        return token

    return _RELATIVE.sub(relative, _ABSOLUTE.sub(absolute, text))


def shown_path(path: Path | str) -> str:
    """How to name a report in a console line or fix hint: relative to the current directory when under it.

    In a Jenkins workspace that is the path of the archived artifact
    (``.mlcd/reports/test/report.html``), not an absolute path of the agent.
    """
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute.startswith(cwd.rstrip("/") + "/"):
        return os.path.relpath(absolute, cwd)
    return str(path)


class Page:
    """An HTML page being built: escaping, relative links and charts for one output file."""

    def __init__(self, path: Path, title: str, root: Path | None = None) -> None:
        self.path = Path(path)
        self.dir = Path(os.path.abspath(self.path)).parent
        self.root = Path(os.path.abspath(root)) if root is not None else out_root(self.path)
        self.title = title
        self.parts: list[str] = []

    def text(self, value: object) -> str:
        """``value`` as HTML text: redacted, paths relative to the page, escaped."""
        shown = relative_to_page(redact("" if value is None else str(value)), self.path, self.root)
        return html.escape(_CONTROL.sub("", shown))

    def href(self, target: Path | str) -> str:
        """The URL of a local file relative to this page (percent-encoded, ``/`` separators)."""
        rel = os.path.relpath(os.path.abspath(target), self.dir)
        return quote(rel.replace(os.sep, "/"))

    def link(self, target: Path | str, label: str) -> str:
        """``<a>`` to a local file, relative to this page."""
        return f'<a href="{html.escape(self.href(target))}">{self.text(label)}</a>'

    def chart(self, image: Path, alt: str, caption: str | None = None) -> str:
        """A chart image file (SVG or PNG) next to the page (or below it), as ``<figure><img>``.

        Raises ValueError for another format or a file outside the page's folder:
        the page must not depend on anything that is not archived with it.
        """
        image = Path(os.path.abspath(image))
        if image.suffix.lower() not in CHART_SUFFIXES:
            raise ValueError(f"chart {image.name}: use an SVG or PNG file")
        if self.dir not in image.parents:
            raise ValueError(f"chart {image.name}: write it next to the page ({self.dir.name}/)")
        cap = f"<figcaption>{self.text(caption)}</figcaption>" if caption else ""
        return (
            f'<figure class="chart"><img src="{html.escape(self.href(image))}" alt="{self.text(alt)}">'
            f"{cap}</figure>"
        )

    def add(self, *parts: str) -> None:
        """Append HTML fragments (already escaped)."""
        self.parts.extend(parts)

    def table(self, headers: Iterable[str], rows: Iterable[tuple[str, list[str]]]) -> None:
        """A table: ``rows`` are ``(row class, [cell HTML, ...])``."""
        head = "".join(f'<th scope="col">{self.text(h)}</th>' for h in headers)
        self.add(f"<table><thead><tr>{head}</tr></thead><tbody>")
        for cls, cells in rows:
            row_class = f' class="{html.escape(cls)}"' if cls else ""
            self.add(f"<tr{row_class}>{''.join(cells)}</tr>")
        self.add("</tbody></table>")

    def write(self) -> Path:
        """Write the page and the stylesheet next to it (both atomically); return the page's path."""
        doc = "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{self.text(self.title)}</title>",
                f'<link rel="stylesheet" href="{STYLESHEET}">',
                "</head><body><main>",
                *self.parts,
                "</main></body></html>",
            ]
        )
        write_stylesheet(self.dir)
        _write_atomic(self.path, doc + "\n")
        return self.path


def stylesheet_text() -> str:
    """The stylesheet every page links to (a package resource)."""
    return resources.files("mlcd.reports").joinpath(STYLESHEET).read_text(encoding="utf-8")


def write_stylesheet(folder: Path) -> Path:
    """Write ``mlcd.css`` into ``folder`` unless it is already there and current."""
    target = Path(folder) / STYLESHEET
    text = stylesheet_text()
    try:
        if target.read_text(encoding="utf-8") == text:
            return target
    except OSError:
        pass
    _write_atomic(target, text)
    return target


def td(content: str, cls: str | None = None) -> str:
    """A table cell holding already-escaped HTML."""
    return f'<td class="{cls}">{content}</td>' if cls else f"<td>{content}</td>"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
