"""The security section of `make reliability`'s summary: issue 12's ten findings and the canary scans.

Each finding lists the tests that reproduce its attack and check it now fails safe.
Python tests outside ``tests/python/reliability`` are added to the suite's pytest run
(:data:`EXTRA_TESTS`), so every Python one is counted from the same JUnit XML; the
Groovy ones run with ``make test-groovy`` and are listed, not counted, here.
The canary rows come from the results file: the session-wide scan of every output of
the suite (``tests/python/reliability/conftest.py``) and the demo's scan
(``test_secrets.py::test_demo_with_canary_keys_leaks_nowhere``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from lxml import etree

FINDINGS: list[tuple[str, list[str]]] = [
    ("1. forged archive in the repository", [
        "test_security_local::test_forged_bundle_in_the_repository_is_not_fetched_nor_deployed",
    ]),
    ("2. forged or reused approval", [
        "test_security_local::test_hand_edited_prod_approval_deploys_nothing",
        "test_stage_approve_status::test_hand_written_approval_is_refused_by_deploy",
        "test_stage_approve_status::test_edited_signed_approval_is_refused",
        "test_stage_approve_status::test_approve_needs_the_right_approval_key",
        "test_stage_publish_fetch::test_fetch_of_a_different_archive_clears_approvals",
    ]),
    ("3. key echoed in an error body, cut before redaction", [
        "test_security_redaction::test_error_body_cut_never_leaves_part_of_the_key",
        "test_security_redaction::test_any_key_in_any_encoding_is_masked_before_any_cut",
        "test_security_redaction::test_key_echoed_in_an_error_body_leaks_nowhere",
        "test_security_redaction::test_key_echoed_at_every_cut_offset_leaks_nowhere",
    ]),
    ("4. a pull request runs its own mlcd", [
        "groovy:MlcdSetupAttackTest.aCommittedFakeMlcdInTheCheckoutIsNeverRun",
        "groovy:MlcdSetupAttackTest.aPullRequestBuildNeverReusesAVenv",
    ]),
    ("5. package-index password in the -x trace", [
        "groovy:MlcdSetupAttackTest.theIndexPasswordNeverAppearsInTheTracedConsoleLogNorOnACommandLine",
        "groovy:PipelineEndToEndTest.noKeyLeaked",
    ]),
    ("6. deploy lock in a shared directory, following symlinks", [
        "test_security_local::test_symlinked_deploy_lock_is_refused_and_its_target_kept",
    ]),
    ("7. unbounded size, compression, zip members, time", [
        "test_security_network::test_oversized_json_answer_is_refused_with_bounded_memory",
        "test_security_network::test_drip_fed_answer_ends_at_the_wall_clock_deadline",
        "test_security_network::test_drip_fed_repository_ends_at_the_wall_clock_deadline",
        "test_security_network::test_endless_download_stops_at_the_size_in_the_metadata",
        "test_security_network::test_zip_member_larger_than_the_cap_is_refused_before_reading",
        "test_security_network::test_zip_member_that_lies_about_its_size_is_not_read_past_it",
        "test_security_network::test_zip_with_too_many_members_is_refused_before_parsing",
    ]),
    ("8. edited audit trail", [
        "test_security_local::test_edited_audit_trail_is_refused_by_status_naming_the_line",
    ]),
    ("9. plain http:// accepted silently", [
        "test_security_network::test_plain_http_is_refused_without_the_opt_in_and_warned_with_it",
    ]),
    ("10. stand-in test-control routes and scenario environment", [
        "test_sim_units::test_test_control_routes_exist_only_when_asked_and_always_need_the_key",
        "test_sim_scenarios::test_step_scripts_see_an_allow_listed_environment_only",
    ]),
]  # fmt: skip

# the Python tests above that live outside tests/python/reliability (run with the suite)
EXTRA_TESTS = [
    "tests/python/stages/test_stage_approve_status.py::test_hand_written_approval_is_refused_by_deploy",
    "tests/python/stages/test_stage_approve_status.py::test_edited_signed_approval_is_refused",
    "tests/python/stages/test_stage_approve_status.py::test_approve_needs_the_right_approval_key",
    "tests/python/stages/test_stage_publish_fetch.py::test_fetch_of_a_different_archive_clears_approvals",
    "tests/python/sim/test_sim_units.py::test_test_control_routes_exist_only_when_asked_and_always_need_the_key",
    "tests/python/sim/test_sim_scenarios.py::test_step_scripts_see_an_allow_listed_environment_only",
]


def _status(case_id: str, cases: dict[str, Counter[str]]) -> str:
    if case_id.startswith("groovy:"):
        return "groovy"
    c = cases.get(case_id)
    if not c:
        return "not run"
    return "failed" if c["failed"] else "passed" if c["passed"] else "skipped"


def section(cases: dict[str, Counter[str]], rows: list[dict[str, Any]]) -> list[str]:
    """The security section (Markdown): per finding its tests' outcomes, then the canary scans.

    ``cases``: ``module::test name`` (parameters dropped) -> passed/failed/skipped counts.
    """
    lines = ["", "Security (issue 12): each finding's tests (Python: this run; Groovy: make test-groovy)",
             "", "| finding | tests passed / failed / not run (cases) | Groovy tests | test ids |",
             "|---|---|---|---|"]  # fmt: skip
    for title, ids in FINDINGS:
        seen = Counter(_status(i, cases) for i in ids)
        runs = Counter[str]()
        for i in ids:
            runs.update(cases.get(i, Counter()))
        counted = f"{seen['passed']} / {seen['failed']} / {seen['not run'] + seen['skipped']}"
        counted += f" ({runs['passed']} passed, {runs['failed']} failed)"
        lines.append(f"| {title} | {counted} | {seen['groovy']} | {'<br>'.join(ids)} |")
    total = Counter(_status(i, cases) for _, ids in FINDINGS for i in ids)
    lines.append(f"| all ten | {total['passed']} / {total['failed']} / {total['not run'] + total['skipped']} "
                 f"| {total['groovy']} | |")  # fmt: skip
    lines += ["", "| canary scan | keys | forms looked for | files/texts | bytes | hits |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for category, title in (("canary_scan", "every output of this run (session scan)"),
                            ("canary_demo", "scripts/demo.py (stdout, stderr, out dir)"),
                            ("secrets", "test_secrets command runs (per run)")):  # fmt: skip
        mine = [r for r in rows if r["category"] == category]
        if not mine:
            lines.append(f"| {title} | - | - | - | - | not run |")
            continue
        keys = sum(int(r.get("keys", 0)) for r in mine) or "-"
        needles = max(int(r.get("needles", 0)) for r in mine)
        files = sum(int(r.get("files", 0)) + int(r.get("outputs", 0)) for r in mine)
        size = sum(int(r.get("bytes", 0)) for r in mine)
        hits = sum(int(r.get("hits", r.get("leaks", 0))) for r in mine)
        lines.append(f"| {title} | {keys} | {needles} | {files} | {size} | {hits} |")
    return lines


def junit_cases(path: Path) -> dict[str, Counter[str]]:
    """``module::test name`` (parameters dropped) -> passed/failed/skipped counts, from JUnit XML."""
    cases: dict[str, Counter[str]] = {}
    if not path.exists():
        return cases
    for case in etree.parse(str(path)).getroot().iter("testcase"):
        module = str(case.get("classname") or "").split(".")[-1]
        name = str(case.get("name") or "").split("[")[0]
        status = "passed"
        for child in case:
            if str(child.tag) in ("failure", "error"):
                status = "failed"
            elif str(child.tag) == "skipped":
                status = "skipped"
        cases.setdefault(f"{module}::{name}", Counter())[status] += 1
    return cases
