"""Reading DSS's answers where their shape is not confirmed: settings, bundle lists, reports.

Each reader accepts every shape the evidence shows (docs/stand-in.md): nested
and flat imported-bundle fields, an activation refused by an HTTP error or by a
report, an export still running in the background.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: where project settings hold connection remappings (DSS UI, Project Deployer settings, a real probe)
REMAPPING_KEY = "bundleContainerSettings.remapping.connections"
#: where project settings hold code-env remappings (inferred: the Project Deployer's settings use this path)
CODE_ENV_REMAPPING_KEY = "bundleContainerSettings.remapping.codeEnvs"
_IN_PROGRESS = frozenset({"BUILDING", "RUNNING", "PENDING", "EXPORTING", "IN_PROGRESS"})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pairs_of(settings: dict[str, Any], kind: str) -> dict[str, str]:
    """``bundleContainerSettings.remapping.<kind>`` (``[{source, target}]``) as ``{source: target}``."""
    items = _dict(_dict(settings.get("bundleContainerSettings")).get("remapping")).get(kind)
    return {
        str(r["source"]): str(r["target"])
        for r in (items if isinstance(items, list) else [])
        if isinstance(r, dict) and r.get("source") and r.get("target")
    }


def _with_pairs(settings: dict[str, Any], kind: str, pairs: dict[str, str]) -> dict[str, Any]:
    """``settings`` with ``bundleContainerSettings.remapping.<kind>`` replaced (every other key as read)."""
    out = dict(settings)
    container = dict(_dict(out.get("bundleContainerSettings")))
    remapping = dict(_dict(container.get("remapping")))
    remapping[kind] = [{"source": s, "target": t} for s, t in sorted(pairs.items())]
    container["remapping"] = remapping
    out["bundleContainerSettings"] = container
    return out


def remappings_of(settings: dict[str, Any]) -> dict[str, str]:
    """The connection remappings of project settings as ``{source: target}``."""
    return _pairs_of(settings, "connections")


def with_remappings(settings: dict[str, Any], remappings: dict[str, str]) -> dict[str, Any]:
    """``settings`` with its connection remapping list replaced by ``remappings``."""
    return _with_pairs(settings, "connections", remappings)


def code_env_remappings_of(settings: dict[str, Any]) -> dict[str, str]:
    """The code-env remappings of project settings as ``{source: target}``."""
    return _pairs_of(settings, "codeEnvs")


def with_code_env_remappings(settings: dict[str, Any], remappings: dict[str, str]) -> dict[str, Any]:
    """``settings`` with its code-env remapping list replaced (every other key as read)."""
    return _with_pairs(settings, "codeEnvs", remappings)


_ABSENT = object()


def not_kept(written: dict[str, Any], removed: Iterable[str], kept: dict[str, Any]) -> list[str]:
    """Names a read-back shows were not kept: a written value differs (or is gone), a removed one stays."""
    changed = [k for k, v in written.items() if kept.get(k, _ABSENT) != v]
    return sorted(changed + [k for k in removed if k in kept])


def imported_item(item: dict[str, Any]) -> dict[str, Any]:
    """An imported-bundle list item with flat ``importedOn``/``exportedOn``/``exportedBy`` filled in.

    The DSS UI reads ``importState.importedOn`` and ``exportManifest.exportUserInfo.exportedOn``;
    older answers (and the stand-in's "flat" dialect) carry them at the top level.
    """
    out = dict(item)
    user_info = _dict(_dict(item.get("exportManifest")).get("exportUserInfo"))
    nested = {
        "importedOn": _dict(item.get("importState")).get("importedOn"),
        "exportedOn": user_info.get("exportedOn"),
        "exportedBy": _dict(user_info.get("exportedBy")).get("login") or user_info.get("exportedBy"),
    }
    for key, value in nested.items():
        if out.get(key) in (None, "", 0) and value not in (None, "", 0):
            out[key] = value
    return out


def export_in_progress(item: dict[str, Any]) -> bool:
    """Whether an exported-bundle list item is still being built (background export)."""
    if str(item.get("state") or "").upper() in _IN_PROGRESS:
        return True
    future = item.get("futureItem")
    return isinstance(future, dict) and bool(future.get("alive", True))


def report_errors(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The ERROR/FATAL messages of a preload or activation report."""
    out = []
    for m in report.get("messages") or []:
        if isinstance(m, dict) and (
            str(m.get("severity") or "").upper() in ("ERROR", "FATAL") or m.get("isFatal")
        ):
            out.append(m)
    return out


def message_text(m: dict[str, Any]) -> str:
    """The text of a report message (message, else title, else details)."""
    return " ".join(str(m.get("message") or m.get("title") or m.get("details") or "").split())


def report_failed(report: dict[str, Any]) -> bool:
    """Whether a preload or activation report says it failed (``success: false`` or an error message)."""
    return report.get("success") is False or bool(report_errors(report)) or bool(report.get("fatal"))


def project_standards_findings(answer: Any, depth: int = 0) -> list[str]:
    """One line per Project Standards check that found an issue or could not run, from an export answer.

    The answer's shape is not documented: any key naming project standards is searched for
    check results (``status`` RUN_SUCCESS/RUN_ERROR/NOT_APPLICABLE, ``severity`` 0-5, ``message``).
    """
    if depth > 4:
        return []
    if isinstance(answer, list):
        return [line for item in answer for line in project_standards_findings(item, depth + 1)]
    if not isinstance(answer, dict):
        return []
    result = _dict(answer.get("result")) or answer
    if depth > 0 and "status" in result and ("severity" in result or "message" in result):
        return _check_finding(answer, result)
    found: list[str] = []
    for key, value in answer.items():
        if depth > 0 or "standard" in key.lower():
            found += project_standards_findings(value, depth + 1)
    return found


def _check_finding(check_item: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """``[line]`` when one check's result is an issue (severity > 0) or an error, else ``[]``."""
    check = _dict(check_item.get("check"))
    name = str(check_item.get("checkName") or check_item.get("name") or check.get("name") or "check")
    severity = result.get("severity")
    if result.get("status") == "RUN_ERROR" or (isinstance(severity, int) and severity > 0):
        return [f"{name}: {result.get('status')}, severity {severity}: {result.get('message') or ''}".strip()]
    return []
