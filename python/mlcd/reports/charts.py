"""Charts of the reports, drawn with matplotlib as PNG files next to the page (never inline, never data:).

:func:`scenario_durations_chart` draws how long each test and smoke scenario run
took, per environment, from the audit ``run_scenario`` records of the run. The data
drawn is kept beside the image (``<name>.json``): a page refreshed with the same
data does not draw again, so commands that change nothing pay nothing for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PALETTE = {"tests": "#0550ae", "smoke": "#1a7f37", "smoke-after-rollback": "#8250df"}
FAILED_COLOUR = "#cf222e"
_MAX_BARS = 40  # a chart a person can read; the table below the chart has every run


def scenario_bars(audit: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One bar per scenario run in ``audit``: environment, gate, scenario, attempt, seconds, passed."""
    bars = []
    for r in audit:
        if r.get("operation") != "run_scenario" or not isinstance(r.get("durationMs"), (int, float)):
            continue
        detail = r.get("detail") or {}
        bars.append(
            {
                "environment": str(r.get("environment") or "?"),
                "gate": str(detail.get("gate") or "tests"),
                "scenario": str(detail.get("scenario") or "?"),
                "attempt": int(detail.get("attempt") or 1),
                "seconds": float(r["durationMs"]) / 1000.0,
                "passed": r.get("outcome") in ("SUCCESS", "WARNING"),
            }
        )
    return bars[-_MAX_BARS:]


def scenario_durations_chart(path: Path, audit: list[dict[str, Any]]) -> bool:
    """Draw the scenario durations of ``audit`` to ``path`` (PNG); False when there is nothing to draw."""
    bars = scenario_bars(audit)
    data = path.with_suffix(".json")
    if not bars:
        return False
    text = json.dumps(bars, sort_keys=True)
    if path.is_file() and data.is_file() and data.read_text(encoding="utf-8") == text:
        return True  # the same data is drawn already
    _draw(path, bars)
    data.write_text(text, encoding="utf-8")
    return True


def _draw(path: Path, bars: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a build agent
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    labels = [
        f"{b['environment']} · {b['scenario']}" + (f" (attempt {b['attempt']})" if b["attempt"] > 1 else "")
        for b in bars
    ]
    colours = [PALETTE.get(b["gate"], "#57606a") if b["passed"] else FAILED_COLOUR for b in bars]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.32 * len(bars)), dpi=100)
    try:
        positions = list(range(len(bars)))[::-1]  # first run on top
        ax.barh(positions, [b["seconds"] for b in bars], color=colours, height=0.6)
        ax.set_yticks(positions, labels=labels, fontsize=8)
        ax.set_xlabel("seconds")
        ax.set_title("Scenario runs of this release, per environment", fontsize=10)
        gates = dict.fromkeys(b["gate"] for b in bars)
        handles = [Patch(color=PALETTE.get(g, "#57606a"), label=g) for g in gates]
        if not all(b["passed"] for b in bars):
            handles.append(Patch(color=FAILED_COLOUR, label="failed"))
        ax.legend(handles=handles, fontsize=8, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
