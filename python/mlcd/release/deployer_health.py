"""The Project Deployer's health gate as a JUnit report: ``reports/<env>/deployment-health-<bundle>.xml``.

``name`` is the file's name without ``.xml``. One test
case for the gate itself (the deployment's health against the allowed values,
with the update's log excerpt), then one per health message: an ERROR message
fails, a WARNING fails unless WARNING is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcd.reports.junit import write_junit
from mlcd.reports.results import CaseResult

if TYPE_CHECKING:
    from mlcd.release.deployer_target import ProjectDeployerTarget


def write_health_report(
    target: ProjectDeployerTarget,
    name: str,
    deployment: str,
    bundle_id: str,
    health: str,
    messages: list[dict[str, Any]],
    log_lines: list[str],
    failure: str | None,
) -> Path:
    """Write the JUnit report of one health gate; its path."""
    allowed = target.cfg.allowed_health
    gate_passed = failure is None and health in allowed
    cases = [
        CaseResult(
            scenario_id="deployment health",
            outcome=health,
            passed=gate_passed,
            duration_s=0.0,
            run_id=None,
            failing_step=None,
            error_type=None if gate_passed else health,
            error_message=None
            if gate_passed
            else failure or f"health {health}, only {' or '.join(allowed)} passes",
            log_excerpt="\n".join(log_lines),
        )
    ]
    for n, m in enumerate(messages, 1):
        ok = m["severity"] in ("SUCCESS", "INFO") or (m["severity"] == "WARNING" and "WARNING" in allowed)
        cases.append(
            CaseResult(
                scenario_id=f"{n:02d} {m['severity']} {m['code'] or m['title'] or 'message'}",
                outcome=m["severity"],
                passed=ok,
                duration_s=0.0,
                run_id=None,
                failing_step=None,
                error_type=None if ok else m["severity"],
                error_message=None if ok else f"{m['title']}: {m['message']}".strip(": "),
                log_excerpt=f"{m['title']}\n{m['message']}".strip(),
            )
        )
    properties = {
        "project": target.project,
        "environment": target.name,
        "bundleId": bundle_id,
        "deployment": deployment,
        "infra": target.cfg.infra,
        "health": health,
    }
    folder = target.out_dir / "reports" / target.name
    return write_junit(folder / f"{name}.xml", target.name, f"{target.name}.{name}", cases, properties)
