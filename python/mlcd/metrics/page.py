"""The delivery metrics as files: ``delivery.json``, and an HTML page with a matplotlib chart next to it.

The page follows :mod:`mlcd.reports.page` (Jenkins' CSP: stylesheet and chart as
separate files, no inline style or script).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcd.metrics.delivery import HEADERS, table_rows
from mlcd.reports.page import Page, td, tone
from mlcd.runrecord import write_json_atomic

CHART = "deployments.svg"


def _chart(metrics: dict[str, Any], path: Path) -> Path | None:
    """Deployments per project/environment, succeeded and failed stacked (None without deployments)."""
    rows = metrics["rows"]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    matplotlib.rcParams["svg.hashsalt"] = "mlcd"  # the same metrics give the same file
    labels = [f"{r['project']}\n{r['environment']}" for r in rows]
    ok = [r["succeeded"] for r in rows]
    failed = [r["failed"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows) + 2), 3.2))
    try:
        ax.bar(labels, ok, color="#2da44e", label="succeeded")
        ax.bar(labels, failed, bottom=ok, color="#cf222e", label="failed")
        ax.set_ylabel("deployments")
        ax.set_title("Deployments in the window")
        ax.legend(loc="upper right", fontsize="small")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        fig.savefig(path, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    return path


def write_delivery(metrics: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``delivery.json`` and ``index.html`` (with its chart and stylesheet) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data_path = folder / "delivery.json"
    write_json_atomic(data_path, metrics)
    page = Page(folder / "index.html", "Delivery metrics")
    window = metrics["window"]
    page.add(
        "<h1>Delivery metrics</h1>",
        f'<p class="note">Window: {page.text(window["start"][:16])} to {page.text(window["end"][:16])} UTC '
        f"({page.text(window['days'])} days), from mlcd's audit trails. Data: "
        f"{page.link(data_path, 'delivery.json')}.</p>",
    )
    if not metrics["rows"]:
        page.add('<p class="note">No deployment in the window.</p>')
    else:
        rows = []
        for cells, row in zip(table_rows(metrics), metrics["rows"], strict=True):
            html_cells = [td(page.text(c)) for c in cells]
            rows.append((tone("SUCCEEDED" if row["failed"] == 0 else "FAILED"), html_cells))
        page.table(HEADERS, rows)
        chart = _chart(metrics, folder / CHART)
        if chart is not None:
            page.add(page.chart(chart, "deployments per project and environment, succeeded and failed"))
    page.add(
        "<h2>Definitions</h2>",
        "<ul><li>per week: succeeded deployments per week over the window</li>",
        "<li>failure rate: deployments that did not succeed (rolled back, needing attention, refused)</li>",
        "<li>lead time (median): from the bundle of the commit to its successful deployment</li>",
        "<li>restore (median): from a failed deployment to the environment running a verified bundle "
        "again</li></ul>",
    )
    return data_path, page.write()


def delivery_json(metrics: dict[str, Any]) -> str:
    """The metrics as printed by ``--format json``."""
    return json.dumps(metrics, indent=2, sort_keys=True)
