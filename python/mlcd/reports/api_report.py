"""The API service gate report: ``reports/api-<service>-<env>.html`` and its SVG charts, CSP-safe.

One section per gate run (the new version, and the previous one after a revert):
the correctness numbers, the load numbers, a latency histogram drawn from the HDR
histogram and a latency-over-time plot (mean and maximum per second, with requests
per second). Charts are drawn with matplotlib (Agg backend) into SVG files next to
the page; without matplotlib the page says so and carries the numbers only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.reports.page import Page, td

if TYPE_CHECKING:
    from mlcd.apiservice.gates import GateRun


def _histogram_points(run: GateRun) -> list[tuple[float, int]]:
    if run.load is None or not run.load.histogram.get_total_count():
        return []
    return [
        (it.value_iterated_to / 1000.0, it.count_at_value_iterated_to)
        for it in run.load.histogram.get_recorded_iterator()
    ]


def _charts(folder: Path, stem: str, run: GateRun) -> list[tuple[Path, str]]:
    """Draw the two charts of ``run``'s load gate; [] without matplotlib or load numbers."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    if run.load is None or not run.load.requests:
        return []
    out = []
    points = _histogram_points(run)
    if points:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar([p[0] for p in points], [p[1] for p in points], width=max(0.05, points[-1][0] / 200))
        for pct, style in ((50, ":"), (95, "--"), (99, "-.")):
            ax.axvline(run.load.percentile_ms(pct), linestyle=style, color="black", label=f"p{pct}")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("requests")
        ax.legend()
        path = folder / f"{stem}-latency-histogram.svg"
        fig.tight_layout()
        fig.savefig(path, format="svg")
        plt.close(fig)
        out.append((path, f"latency histogram of {run.version}"))
    fig, ax = plt.subplots(figsize=(7, 3))
    t = [row["t"] for row in run.load.timeline]
    ax.plot(t, [row["meanMs"] for row in run.load.timeline], marker="o", label="mean latency (ms)")
    ax.plot(t, [row["maxMs"] for row in run.load.timeline], marker="x", label="max latency (ms)")
    ax.set_xlabel("second of the load run")
    ax.set_ylabel("ms")
    ax2 = ax.twinx()
    ax2.plot(t, [row["count"] for row in run.load.timeline], color="grey", linestyle=":", label="requests/s")
    ax2.set_ylabel("requests/s")
    ax.legend(loc="upper left")
    path = folder / f"{stem}-latency-over-time.svg"
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    out.append((path, f"latency over time of {run.version}"))
    return out


def _rows(numbers: dict[str, Any] | None, keys: list[str]) -> list[tuple[str, list[str]]]:
    if not numbers:
        return []
    return [("", [td(k), td(str(numbers.get(k)))]) for k in keys]


def write_api_report(
    path: Path, service: str, env: str, runs: list[GateRun], health: list[str] | None = None
) -> Path:
    """Write the page (and its charts) for ``runs``; return its path."""
    page = Page(path, f"mlcd api: {service} on {env}")
    page.add(f"<h1>{page.text(f'API service {service} on {env}')}</h1>")
    if health:
        page.add("<h2>Health after the update</h2><ul>")
        page.add(*(f"<li>{page.text(m)}</li>" for m in health))
        page.add("</ul>")
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, run in enumerate(runs):
        verdict = "passed" if run.passed else "failed"
        page.add(f"<h2>{page.text(f'Gates on version {run.version}: {verdict}')}</h2>")
        if run.correctness is not None:
            page.add(f"<h3>Correctness</h3><p>{page.text(run.correctness.summary())}</p>")
            page.table(
                ["measure", "value"],
                _rows(run.correctness.numbers(), ["metric", "score", "threshold", "answered"]),
            )
        if run.load is not None:
            page.add(f"<h3>Load</h3><p>{page.text(run.load.summary())}</p>")
            keys = [
                "requests",
                "errors",
                "errorRate",
                "durationS",
                "rps",
                "cpuS",
                "p50Ms",
                "p95Ms",
                "p99Ms",
                "maxMs",
            ]
            page.table(["measure", "value"], _rows(run.load.numbers(), keys))
            page.add(
                "<p>Closed loop: a stalled service delays the next request, "
                "so latency under a stall is under-reported.</p>"
            )
            charts = _charts(path.parent, f"{path.stem}-{i}", run)
            if not charts:
                page.add("<p>No charts: matplotlib is not installed.</p>")
            page.add(*(page.chart(p, alt, alt) for p, alt in charts))
    return page.write()
