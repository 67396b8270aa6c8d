"""The reports of `mlcd retrain`: JUnit XML (one case per saved model, one for the scenario) and HTML.

The HTML page shows each saved model's champion and challenger side by side (version,
metric value, gain, verdict, the version active afterwards); like every mlcd page it
has no script, no inline style and links ``mlcd.css`` next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcd.reports.junit import write_junit
from mlcd.reports.page import Page, td, tone
from mlcd.reports.results import CaseResult


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "-"


def _case(model: dict[str, Any]) -> CaseResult:
    verdict = model.get("verdict") or {}
    passed = model.get("outcome") == "SUCCESS"
    champion, challenger = model["champion"], model["challenger"]
    side_by_side = (
        f"metric: {model['metric']} ({model['direction']} is better); rule: {model['rule']}\n"
        f"champion: {champion['version'] or '-'} = {_value(champion['value'])}\n"
        f"challenger: {challenger['version'] or '-'} = {_value(challenger['value'])}\n"
        f"verdict: {verdict.get('reason', '-')}\nactive afterwards: {model.get('activeVersion') or '-'}"
    )
    return CaseResult(
        scenario_id=f"saved model {model['savedModel']}",
        outcome="SUCCESS" if passed else "FAILED",
        passed=passed,
        duration_s=0.0,
        run_id=None,
        failing_step=None,
        error_type=None if passed else str(model.get("outcome")),
        error_message=None if passed else model["message"],
        log_excerpt=side_by_side,
    )


def _scenario_case(scenario: dict[str, Any]) -> CaseResult | None:
    if not scenario:
        return None
    outcome = str(scenario.get("outcome") or "FAILED")
    passed = outcome in ("SUCCESS", "WARNING")
    return CaseResult(
        scenario_id=str(scenario["id"]), outcome=outcome, passed=passed, duration_s=0.0,
        run_id=scenario.get("runId"), failing_step=None, error_type=None if passed else outcome,
        error_message=scenario.get("error"), log_excerpt="",
    )  # fmt: skip


def write_model_reports(
    folder: Path, env: str, details: dict[str, Any], outcome: str, message: str, smoke: list[CaseResult]
) -> list[str]:
    """Write ``retrain.xml`` and ``retrain.html`` into ``folder``; return their paths.

    ``smoke``: the smoke scenarios run after a promotion (cases of the JUnit report too).
    """
    models: list[dict[str, Any]] = details.get("models") or []
    cases = [c for c in [_scenario_case(details.get("scenario") or {}), *map(_case, models), *smoke] if c]
    junit = write_junit(
        folder / "retrain.xml", f"retrain {env}", f"mlcd.retrain.{env}", cases, {"outcome": outcome}
    )
    page = Page(folder / "retrain.html", f"Retrain on {env}")
    verdict_tone = tone("SUCCESS" if outcome == "SUCCESS" else "FAILED")
    page.add(
        f"<h1>{page.text(f'Retrain on {env}')}</h1>",
        f'<p class="verdict {verdict_tone}">{page.text(outcome)}</p>',
        f"<p>{page.text(message)}</p>",
    )
    rows = [(tone(m.get("outcome")), [td(page.text(c)) for c in _model_cells(m)]) for m in models]
    page.table(
        [
            "saved model",
            "metric",
            "champion",
            "value",
            "challenger",
            "value",
            "gain",
            "verdict",
            "active after",
        ],
        rows,
    )
    if smoke:
        _smoke_table(page, smoke)
    return [str(junit), str(page.write())]


def _model_cells(m: dict[str, Any]) -> list[str]:
    """One saved model's row: metric, champion and challenger, the verdict and the active version after."""
    verdict = m.get("verdict") or {}
    champion, challenger = m["champion"], m["challenger"]
    return [
        m["savedModel"],
        f"{m['metric']} ({m['direction']} is better)",
        champion["version"] or "-",
        _value(champion["value"]),
        challenger["version"] or "-",
        _value(challenger["value"]),
        _value(verdict.get("gain")),
        verdict.get("reason", "-"),
        m.get("activeVersion") or "-",
    ]


def _smoke_table(page: Page, smoke: list[CaseResult]) -> None:
    page.add("<h2>Smoke after promotion</h2>")
    smoke_rows = [
        (
            tone(c.outcome),
            [td(page.text(v or "-")) for v in (c.scenario_id, c.outcome, c.run_id, c.error_message)],
        )
        for c in smoke
    ]
    page.table(["scenario", "outcome", "run id", "error"], smoke_rows)
