"""`mlcd jenkins report` and `mlcd report delivery --jenkins-url` against the Jenkins stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcd.cli import main
from support.jenkins_server import JenkinsStandIn

TOKEN = "aa11bb22cc33dd44ee55"
T0 = 1_765_000_000_000  # ms


def _audit(*lines: dict[str, object]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


@pytest.fixture
def jk(monkeypatch: pytest.MonkeyPatch) -> Iterator[JenkinsStandIn]:
    monkeypatch.setenv("JENKINS_USER", "admin")
    monkeypatch.setenv("JENKINS_API_TOKEN", TOKEN)
    with JenkinsStandIn.start({"admin": TOKEN}) as server:
        server.add_item("team", "folder")
        server.add_item("team/churn", "multibranch")
        server.add_item("team/churn/main", "pipeline")
        server.add_build(
            "team/churn/main", 1, result="SUCCESS", timestamp=T0, description="CHURN_r1 on test, prod",
            stages=[("Validate", "SUCCESS"), ("Deploy prod", "SUCCESS")],
            tests=[{"className": "CHURN.test", "name": "TEST_DATA_QUALITY", "status": "PASSED"}],
        )  # fmt: skip
        server.add_build(
            "team/churn/main", 2, result="UNSTABLE", timestamp=T0 + 3_600_000, description="CHURN_r2",
            stages=[("Validate", "SUCCESS"), ("Test test", "UNSTABLE"), ("Deploy prod", "NOT_EXECUTED")],
            tests=[
                {"className": "CHURN.test", "name": "TEST_MODEL_PERFORMANCE", "status": "REGRESSION",
                 "errorDetails": "auc 0.51 < 0.75"},
                {"className": "CHURN.test", "name": "TEST_DATA_QUALITY", "status": "PASSED"},
            ],
            artifacts={".mlcd/run.json": json.dumps({"project": "CHURN", "bundleId": "CHURN_r2",
                       "environments": {"test": {"state": "ROLLED_BACK"}}}).encode()},
        )  # fmt: skip
        yield server


def test_report_walks_the_folder_and_shows_stages_and_failing_tests(
    jk: JenkinsStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / ".mlcd"
    code = main(["jenkins", "report", "--jenkins-url", jk.url, "--job", "team", "--out-dir", str(out),
                 "--format", "json"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    data = json.loads(printed[: printed.rindex("}") + 1])
    builds = {b["number"]: b for b in data["builds"]}
    assert set(builds) == {1, 2}
    assert builds[2]["result"] == "UNSTABLE"
    assert {"name": "Deploy prod", "status": "NOT_EXECUTED"} in builds[2]["stages"]
    assert builds[2]["failingTests"] == [
        {"className": "CHURN.test", "name": "TEST_MODEL_PERFORMANCE", "message": "auc 0.51 < 0.75"}
    ]
    assert builds[2]["release"] == {"project": "CHURN", "bundleId": "CHURN_r2",
                                    "environments": {"test": "ROLLED_BACK"}}  # fmt: skip
    assert (
        builds[1]["failingTests"] == [] and builds[1]["tests"]["pass"] == 1 and builds[1]["release"] is None
    )
    assert builds[1]["description"] == "CHURN_r1 on test, prod"
    page = (out / "reports" / "jenkins" / "index.html").read_text()
    assert "TEST_MODEL_PERFORMANCE" in page and "style=" not in page and "<script" not in page
    assert (out / "reports" / "jenkins" / "mlcd.css").is_file()
    assert TOKEN not in printed + page


def test_report_table_names_an_unknown_job_in_one_line(
    jk: JenkinsStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["jenkins", "report", "--jenkins-url", jk.url, "--job", "team/nope", "--out-dir", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "mlcd jenkins: error: reading job team/nope: job[team/nope] does not exist (fix: check --job)"
    ]


def test_delivery_metrics_from_the_trails_builds_archived(
    jk: JenkinsStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def at(minutes: int) -> str:
        from datetime import datetime, timedelta, timezone

        return (datetime.now(timezone.utc) - timedelta(hours=2) + timedelta(minutes=minutes)).isoformat()

    run = b'{"project": "CHURN"}'
    trail_1 = _audit(
        {"time": at(0), "operation": "bundle", "outcome": "SUCCESS", "bundleId": "r1"},
        {
            "time": at(10),
            "operation": "deployment",
            "outcome": "SUCCEEDED",
            "environment": "prod",
            "bundleId": "r1",
        },
    )
    trail_2 = _audit(
        {"time": at(20), "operation": "bundle", "outcome": "SUCCESS", "bundleId": "r2"},
        {"time": at(30), "operation": "record_previous", "outcome": "SUCCESS", "environment": "prod",
         "bundleId": "r2"},
        {"time": at(33), "operation": "deployment", "outcome": "FAILED_ROLLED_BACK", "environment": "prod",
         "bundleId": "r2"},
    )  # fmt: skip
    jk.add_build("team/churn/main", 3, artifacts={".mlcd/audit.jsonl": trail_1, ".mlcd/run.json": run})
    jk.add_build("team/churn/main", 4, artifacts={".mlcd/audit.jsonl": trail_2, ".mlcd/run.json": run})
    out = tmp_path / ".mlcd"
    code = main(["report", "delivery", "--jenkins-url", jk.url, "--job", "team/churn", "--out-dir", str(out),
                 "--format", "json"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    rows = json.loads(printed[: printed.rindex("}") + 1])["rows"]
    assert rows == [
        {
            "project": "CHURN", "environment": "prod", "deployments": 2, "succeeded": 1, "failed": 1,
            "outcomes": {"FAILED_ROLLED_BACK": 1, "SUCCEEDED": 1}, "deploymentsPerWeek": round(7 / 30, 3),
            "changeFailureRate": 0.5, "leadTimeMedianS": 600.0, "leadTimeMaxS": 600.0,
            "timeToRestoreMedianS": 180.0, "restored": 1, "unrestored": 0,
            "successDays": rows[0]["successDays"],
        }
    ]  # fmt: skip
    assert (out / "reports" / "delivery" / "deployments.svg").is_file()


def _printed_json(text: str) -> dict[str, object]:
    data = json.loads(text[: text.rindex("}") + 1])
    assert isinstance(data, dict)
    return data


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_trails_give_the_same_metrics_from_disk_and_from_jenkins(
    jk: JenkinsStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo`'s three releases, read from its out dir and as artifacts of three builds."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    demo = tmp_path / "demo-out"
    monkeypatch.setenv("MLCD_LOCK_DIR", str(tmp_path / "locks"))
    done = subprocess.run([sys.executable, str(repo / "scripts" / "demo.py"), "--out-dir", str(demo)],
                          capture_output=True, text=True, timeout=580, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    jk.add_item("demo", "pipeline")
    for n in (1, 2, 3):
        release = demo / f"release-{n}"
        files = {".mlcd/audit.jsonl": (release / "audit.jsonl").read_bytes(),
                 ".mlcd/run.json": (release / "run.json").read_bytes()}  # fmt: skip
        jk.add_build("demo", n, artifacts=files)
    capsys.readouterr()
    assert (
        main(
            ["report", "delivery", *[a for n in (1, 2, 3) for a in ("--audit", str(demo / f"release-{n}"))],
             "--out-dir", str(tmp_path / "a"), "--format", "json"]
        )
        == 0
    )
    local = _printed_json(capsys.readouterr().out)
    args = ["--jenkins-url", jk.url, "--job", "demo", "--out-dir", str(tmp_path / "b"), "--format", "json"]
    assert main(["report", "delivery", *args]) == 0
    remote = _printed_json(capsys.readouterr().out)
    assert local["rows"] == remote["rows"]
    rows = {r["environment"]: r for r in local["rows"]}  # type: ignore[union-attr]
    assert rows["prod"]["outcomes"] == {"FAILED_ROLLED_BACK": 1, "SUCCEEDED": 1}
    assert rows["prod"]["changeFailureRate"] == 0.5 and rows["prod"]["restored"] == 1
