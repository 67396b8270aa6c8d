"""Run the full reliability suite (`make reliability`) and print its summary table.

Runs every test of ``tests/python/reliability`` (the fast subset `make test` runs and
the tests marked ``reliability``) with pytest, then aggregates the results the
tests wrote to ``.reliability/results.jsonl`` and pytest's JUnit XML
(``.reliability/junit.xml``) into one table: runs, faults injected, final states,
leaks found, cases passed. The table is also written to
``.reliability/summary.md``. Exit code: pytest's.

Usage: ``.venv/bin/python scripts/reliability.py [extra pytest args, e.g. -x or -k faults]``
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lxml import etree
from reliability_security import EXTRA_TESTS, junit_cases, section

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".reliability"
SUITE = "tests/python/reliability"
AREAS = {  # test module -> row of the table
    "test_faults": "1. faults (mlcd run under ~10% faults)",
    "test_fault_plans": "1b. fault plans (the work done, the answer lost; refused rollback/import)",
    "test_kills": "2. kills (SIGKILL in deploy/smoke/rollback)",
    "test_step_interruptions": "2b. step interruptions (deploy/test/smoke/rollback; signals, closed pipes)",
    "test_bad_input": "3. bad input (one line, exit code, nodes unchanged)",
    "test_bad_input_generated": "3b. generated bad input (Hypothesis: mlcd.yaml, numbers, ids, argv)",
    "test_secrets": "4. secrets (canary keys: output, files, argv)",
    "test_tls": "5. TLS (test CA, verify by default)",
    "test_concurrency": "6. concurrency (lock, racer activation)",
    "test_security_network": "security: hostile node/repository (size, compression, deadline, zip, http://)",
    "test_security_redaction": "security: keys echoed in error bodies (every cut offset, every encoding)",
    "test_security_local": "7. security, local (lock dir, audit trail, provenance, approvals)",
}


def run_pytest(extra: list[str]) -> int:
    """Run the whole suite; return pytest's exit code."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    env = dict(os.environ, MLCD_RELIABILITY_RESULTS=str(OUT))
    env.setdefault("MLCD_BAD_INPUT_EXAMPLES", "100")  # per property; `make test` runs 6
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SUITE, *EXTRA_TESTS,
           f"--junitxml={OUT / 'junit.xml'}", *extra]  # fmt: skip
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def junit_counts() -> dict[str, Counter[str]]:
    """Per test module: passed / failed / xfailed (known bugs) / skipped."""
    counts: dict[str, Counter[str]] = {}
    path = OUT / "junit.xml"
    if not path.exists():
        return counts
    for case in etree.parse(str(path)).getroot().iter("testcase"):
        module = str(case.get("classname") or "").split(".")[-1]
        status = "passed"
        for child in case:
            tag = str(child.tag)
            if tag in ("failure", "error"):
                status = "failed"
            elif tag == "skipped":
                status = "xfailed" if "xfail" in str(child.get("type") or "") else "skipped"
        counts.setdefault(module, Counter())[status] += 1
    return counts


def results() -> list[dict[str, Any]]:
    """The lines the tests wrote to results.jsonl."""
    path = OUT / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def detail(area: str, rows: list[dict[str, Any]]) -> str:
    """The area-specific part of a table row."""
    mine = [r for r in rows if r["category"] == area]
    if area == "faults":
        states: Counter[str] = Counter()
        exits: Counter[int] = Counter()
        for r in mine:
            states.update(f"{env}={state}" for env, state in sorted(r["states"].items()))
            exits[int(r["exit"])] += 1
        faults = sum(int(r["faults"]) for r in mine)
        requests = sum(int(r["requests"]) for r in mine)
        rate = f"{100 * faults / requests:.1f}%" if requests else "-"
        violations = sum(int(r["violations"]) for r in mine)
        return (f"runs {len(mine)}; faults injected {faults} in {requests} requests ({rate}); "
                f"final states {dict(sorted(states.items()))}; exit codes {dict(sorted(exits.items()))}; "
                f"unverified-and-unreported {violations}")  # fmt: skip
    if area == "fault_plans":
        exits = Counter(int(r["exit"]) for r in mine)
        violations = sum(int(r["violations"]) for r in mine)
        return (f"runs {len(mine)}; exit codes {dict(sorted(exits.items()))}; "
                f"unverified-and-unreported {violations} (per plan: table below)")  # fmt: skip
    if area == "step_interruptions":
        distinct = {(r["command"], r["interruption"], r["step"]) for r in mine}
        ends = Counter(str(r["end"]) for r in mine)
        return f"distinct points {len(distinct)} (of {len(mine)} runs); ends {dict(sorted(ends.items()))}"
    if area == "kills":
        killed = [r for r in mine if r["killed"]]
        distinct = {(r["command"], r["where"]) for r in killed}
        by_cmd = Counter(str(r["command"]) for r in killed)
        recovered = Counter(str(r["recovered_by"]).split(" (")[0] for r in mine)
        return (f"kill points {len(killed)}, {len(distinct)} distinct (of {len(mine)} attempts) "
                f"{dict(sorted(by_cmd.items()))}; "
                f"verified after {dict(sorted(recovered.items()))}")  # fmt: skip
    if area == "bad_input":
        passed = sum(1 for r in mine if r["passed"])
        return f"cases passed {passed} of {len(mine)}"
    if area == "bad_input_generated":
        passed = sum(1 for r in mine if r["passed"])
        kinds = Counter(str(r["kind"]) for r in mine)
        return f"generated cases passed {passed} of {len(mine)}: {dict(sorted(kinds.items()))}"
    if area == "secrets":
        leaks = sum(int(r["leaks"]) for r in mine)
        files = sum(int(r["files"]) for r in mine)
        procs = sum(int(r["processes"]) for r in mine)
        return (f"leaks found {leaks}; files scanned {files}; mlcd processes' argv sampled {procs}; "
                f"canary scans of the whole run and the demo: security section below")  # fmt: skip
    cases = sorted(str(r["case"]) for r in mine if r.get("passed"))
    return f"checks passed: {', '.join(cases) or '-'}"


def plan_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per fault plan (random faults included): the exit codes and end states its runs reached."""
    by_plan: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["category"] in ("faults", "fault_plans"):
            by_plan.setdefault(str(r.get("plan") or "random"), []).append(r)
    if not by_plan:
        return []
    lines = ["", "| fault plan | runs | exit codes | end states (env=node state/audit) | violations |",
             "|---|---|---|---|---|"]  # fmt: skip
    for plan, mine in sorted(by_plan.items()):
        exits = Counter(int(r["exit"]) for r in mine)
        ends: Counter[str] = Counter()
        for r in mine:
            said = r.get("outcomes") or {}
            ends.update(f"{e}={st}/{said.get(e)}" for e, st in sorted(r["states"].items()))
        violations = sum(int(r["violations"]) for r in mine)
        lines.append(f"| {plan} | {len(mine)} | {dict(sorted(exits.items()))} | "
                     f"{dict(sorted(ends.items()))} | {violations} |")  # fmt: skip
    return lines


def _ending(r: dict[str, Any]) -> str:
    rerun = f", re-run {r['rerun_exit']}" if r.get("rerun_exit") is not None else ""
    return f"exit {r['exit']}{rerun}: {r['end']}"


def interruption_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per command and step boundary: how each interruption ended (exit code, re-run's exit, end state)."""
    mine = [r for r in rows if r["category"] == "step_interruptions"]
    if not mine:
        return []
    kinds = sorted({str(r["interruption"]) for r in mine})
    steps = list(dict.fromkeys((str(r.get("command", "deploy")), str(r["step"])) for r in mine))
    lines = ["", "| command: step (after its record) | " + " | ".join(kinds) + " |",
             "|---|" + "---|" * len(kinds)]  # fmt: skip
    for command, step in steps:
        cells = []
        for kind in kinds:
            here = [r for r in mine if (r.get("command", "deploy"), r["step"], r["interruption"])
                    == (command, step, kind)]  # fmt: skip
            seen = sorted({_ending(r) for r in here})
            cells.append("; ".join(seen) or "-")
        lines.append(f"| {command}: {step} | " + " | ".join(cells) + " |")
    return lines


def table(elapsed: float, code: int) -> str:
    """The summary table (Markdown)."""
    counts = junit_counts()
    rows = results()
    lines = [
        f"mlcd reliability suite: {'PASSED' if code == 0 else 'FAILED'} in {elapsed / 60:.1f} min",
        "",
        "| area | tests passed / failed / known bugs (xfail) | results |",
        "|---|---|---|",
    ]
    for module, title in AREAS.items():
        c = counts.get(module, Counter())
        area = module.removeprefix("test_")
        lines.append(f"| {title} | {c['passed']} / {c['failed']} / {c['xfailed']} | {detail(area, rows)} |")
    total: Counter[str] = Counter()
    for c in counts.values():
        total.update(c)
    lines.append(f"| total | {total['passed']} / {total['failed']} / {total['xfailed']} | |")
    lines += plan_table(rows)
    lines += interruption_table(rows)
    lines += section(junit_cases(OUT / "junit.xml"), rows)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run the suite, print and save the table; return pytest's exit code."""
    started = time.monotonic()
    code = run_pytest(argv)
    text = table(time.monotonic() - started, code)
    (OUT / "summary.md").write_text(text + "\n")
    print("\n" + text)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
