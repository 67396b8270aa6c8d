"""Only the ledger writes an environment's run.json state or the audit `deployment` record."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "python" / "mlcd"
LEDGER = PACKAGE / "release" / "ledger.py"
AUDIT = PACKAGE / "audit.py"
STATE_KEYS = {"state", "deployedBundleId", "activeBundleId", "previousBundleId"}


def writers(root: Path) -> list[str]:
    """`file:line what` for every call outside the ledger that writes env state or a deployment record."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path in (LEDGER, AUDIT):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = node.func.attr
            where = f"{path.relative_to(root)}:{node.lineno}"
            if name == "deployment_outcome":
                found.append(f"{where} deployment_outcome(")
            first = node.args[0] if node.args else None
            if name == "record" and isinstance(first, ast.Constant) and first.value == "deployment":
                found.append(f"{where} record('deployment'")
            if name == "update_env":
                keys = {k.arg for k in node.keywords if k.arg} & STATE_KEYS
                spread = [k for k in node.keywords if k.arg is None]
                if keys or any(not isinstance(k.value, ast.Dict) for k in spread):
                    found.append(f"{where} update_env({', '.join(sorted(keys)) or '**'})")
    return found


def test_only_the_ledger_writes_environment_state_and_deployment_records() -> None:
    assert writers(PACKAGE) == []


def test_the_scan_finds_a_writer(tmp_path: Path) -> None:
    (tmp_path / "rogue.py").write_text(
        "def f(audit, record):\n"
        "    audit.deployment_outcome('test', 'SUCCEEDED', bundle_id='b', active_bundle_id='b', message='')\n"
        "    record.update_env('test', state='DEPLOYED')\n"
        "    audit.record('deployment', 'SUCCEEDED')\n"
    )
    assert len(writers(tmp_path)) == 3
