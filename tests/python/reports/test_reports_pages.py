"""The page helpers and the release page, read as files (the browser tests read them in Chromium)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlcd.reports import CaseResult, Chart, refresh_release_page, shown_path, write_html, write_release_page
from mlcd.reports.page import Page, relative_to_page
from mlcd.reports.release_page import load_run


def test_a_fix_line_names_the_report_relative_to_the_page(tmp_path: Path) -> None:
    out = tmp_path / "ws" / ".mlcd"
    page = out / "reports" / "index.html"
    fix = f"(fix: open {out}/reports/test/report.html for the failing step and log)"
    assert relative_to_page(fix, page) == "(fix: open test/report.html for the failing step and log)"
    gate = out / "reports" / "test" / "report.html"
    assert relative_to_page(f"see {out}/audit.jsonl.", gate) == "see ../../audit.jsonl."
    # URLs and paths outside the out dir and the current directory are left alone
    text = "node http://127.0.0.1:8080/projects/SAMPLE/ and lock /var/lock/mlcd/x.lock, 2/3 passed"
    assert relative_to_page(text, page) == text


def test_paths_under_the_working_directory_are_shown_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".mlcd" / "reports" / "test").mkdir(parents=True)
    (tmp_path / ".mlcd" / "reports" / "test" / "report.html").write_text("x")
    page = tmp_path / ".mlcd" / "reports" / "index.html"
    assert relative_to_page(f"config {tmp_path}/mlcd.yaml", page) == "config mlcd.yaml"
    assert relative_to_page("open .mlcd/reports/test/report.html", page) == "open test/report.html"
    report = tmp_path / ".mlcd" / "reports" / "test" / "report.html"
    assert shown_path(report) == ".mlcd/reports/test/report.html"
    assert shown_path("/elsewhere/report.html") == "/elsewhere/report.html"


def test_charts_are_image_files_next_to_the_page(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "test"
    folder.mkdir(parents=True)
    (folder / "charts").mkdir()
    (folder / "charts" / "latency.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    case = CaseResult("T", "SUCCESS", True, 1.0, None, None, None, None, "", [], 0)
    chart = Chart(folder / "charts" / "latency.svg", "API latency <p99>", "latency per call")
    text = write_html(folder / "report.html", "t", [case], {}, charts=[chart]).read_text()
    assert '<img src="charts/latency.svg" alt="API latency &lt;p99&gt;">' in text
    assert "<figcaption>latency per call</figcaption>" in text
    page = Page(folder / "report.html", "t")
    with pytest.raises(ValueError, match="SVG or PNG"):
        page.chart(folder / "chart.jpg", "x")
    with pytest.raises(ValueError, match="next to the page"):
        page.chart(tmp_path / "elsewhere.svg", "x")


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _audit(op: str, bundle: str | None, env: str | None = None, outcome: str = "SUCCESS",
           **detail: object) -> str:
    return json.dumps({"time": "2026-01-01T00:00:00.000Z", "operation": op, "bundleId": bundle,
                       "environment": env, "outcome": outcome, "actor": "ci", "detail": detail})  # fmt: skip


def test_the_release_page_shows_this_run_only(tmp_path: Path) -> None:
    out = tmp_path / ".mlcd"
    approval = {"approver": "eve", "sha256": "ab" * 32}
    _write(out / "run.json", {"bundleId": "B2", "project": "P", "sha256": "ab" * 32, "gitSha": "c0ffee",
                              "environments": {"prod": {"approval": approval}}})  # fmt: skip
    _write(out / "validate.json", {"stage": "validate", "environment": None, "outcome": "SUCCESS",
                                   "bundleId": None})  # fmt: skip
    _write(out / "bundle.json", {"stage": "bundle", "environment": None, "outcome": "SUCCESS",
                                 "bundleId": "B2"})  # fmt: skip
    _write(out / "deploy-test.json", {"stage": "deploy", "environment": "test", "outcome": "SUCCESS",
                                      "bundleId": "B2", "message": "active"})  # fmt: skip
    _write(out / "deploy-old.json", {"stage": "deploy", "environment": "old", "outcome": "FAILED",
                                     "bundleId": "B1"})  # fmt: skip
    lines = [
        _audit("validate", None), _audit("bundle", "B1"), _audit("deployment", "B1", "test", "SUCCEEDED"),
        _audit("validate", None), _audit("export_bundle", "B2"), _audit("bundle", "B2"),
        _audit("deploy", "B2", "test", "DEPLOYED"), _audit("rollback", "B1", "test", **{"from": "B2"}),
        _audit("verify", "B1", "test", activeBundleId="B1"),
        _audit("deployment", "B2", "test", "FAILED_ROLLED_BACK", activeBundleId="B1", message="rolled back"),
    ]  # fmt: skip
    (out / "audit.jsonl").write_text("\n".join(lines) + "\nnot json\n")
    view = load_run(out)
    assert [r["operation"] for r in view.audit] == [
        "validate", "export_bundle", "bundle", "deploy", "rollback", "verify", "deployment"
    ]
    assert [(s["stage"], s["environment"]) for s in view.stages if s["environment"]] == [("deploy", "test")]
    text = write_release_page(out).read_text()
    assert "<title>Release B2 of P</title>" in text
    assert "c0ffee" in text and "ab" * 32 in text and "eve" in text
    assert "verified: B1 active" in text and "FAILED_ROLLED_BACK" in text
    assert "Environment old" not in text
    assert (out / "reports" / "mlcd.css").is_file()


def test_an_empty_out_dir_gets_a_page_and_a_broken_one_never_raises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = refresh_release_page(tmp_path / "fresh")
    assert page is not None and "NOT STARTED" in page.read_text()
    blocked = tmp_path / "blocked"
    (blocked / "reports" / "index.html").mkdir(parents=True)  # the page cannot be written
    assert refresh_release_page(blocked) is None
    assert "release page not updated" in capsys.readouterr().out


def _mlcd(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLCD_CONFIG", "MLCD_OUT_DIR")}
    return subprocess.run([sys.executable, "-m", "mlcd", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_every_command_writes_the_page_and_a_page_failure_changes_nothing(tmp_path: Path) -> None:
    ok = _mlcd(tmp_path, "validate", "--config", "missing.yaml", "--out-dir", "out")
    assert (tmp_path / "out" / "validate.json").is_file()
    page = (tmp_path / "out" / "reports" / "index.html").read_text()
    assert "validate" in page and "missing.yaml" in page
    (tmp_path / "blocked" / "reports" / "index.html").mkdir(parents=True)
    blocked = _mlcd(tmp_path, "validate", "--config", "missing.yaml", "--out-dir", "blocked")
    assert blocked.returncode == ok.returncode != 0
    assert blocked.stderr == ok.stderr and len(ok.stderr.splitlines()) == 1
    assert (tmp_path / "blocked" / "validate.json").is_file()


def test_the_release_page_masks_secrets_even_if_a_file_holds_one(tmp_path: Path) -> None:
    from mlcd.redact import register_secret

    secret = "page-secret-4242424242"
    register_secret(secret)
    out = tmp_path / ".mlcd"
    _write(out / "run.json", {"bundleId": "B1", "project": "P", "releaseNotes": f"token {secret}"})
    _write(out / "validate.json", {"stage": "validate", "environment": None, "outcome": "FAILED",
                                   "bundleId": None, "message": f"bad key {secret}"})  # fmt: skip
    (out / "audit.jsonl").write_text(_audit("bundle", "B1", key=secret) + "\n")
    text = write_release_page(out).read_text()
    assert secret not in text and "bad key ***" in text


def test_the_release_page_draws_the_scenario_durations_as_a_png_next_to_it(tmp_path: Path) -> None:
    out = tmp_path / ".mlcd"
    _write(out / "run.json", {"bundleId": "B2", "project": "P"})

    def run(env: str, scenario: str, ms: int, outcome: str = "SUCCESS", gate: str = "tests") -> str:
        line = json.loads(_audit("run_scenario", "B2", env, outcome, scenario=scenario, gate=gate, attempt=1))
        return json.dumps({**line, "durationMs": ms})

    lines = [
        _audit("bundle", "B2"),
        run("test", "TEST_PASS", 1200),
        run("test", "TEST_FAIL", 800, "FAILED"),
        run("test", "TEST_SMOKE", 450, gate="smoke"),
        run("prod", "TEST_SMOKE", 3100, gate="smoke"),
    ]
    (out / "audit.jsonl").write_text("\n".join(lines) + "\n")
    text = write_release_page(out).read_text()
    chart = out / "reports" / "scenario-durations.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 2000
    assert '<img src="scenario-durations.png" alt="Bar chart of 4 scenario run(s) of this release; ' in text
    assert "the longest: TEST_SMOKE on prod, 3.1 s" in text and "data:" not in text
    drawn = chart.stat().st_mtime_ns
    write_release_page(out)  # the same data: not drawn again
    assert chart.stat().st_mtime_ns == drawn
    # a run without scenario runs has no chart and no empty figure
    (out / "audit.jsonl").write_text(_audit("bundle", "B2") + "\n")
    assert "<img" not in write_release_page(out).read_text()
