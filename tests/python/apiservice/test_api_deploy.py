"""`mlcd api deploy|gate|revert|status` against the API Deployer and API node stand-ins, over real sockets.

A good version passes both gates; a slow version (p95 over budget) and a wrong one (accuracy under
the threshold) are reverted to the previous version, verified, and recorded by the ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.apienv import DEPLOYMENT, start_api_env

LEDGER_NAME = "api:churn@prod"


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mlcd api: error: ") and "(fix: " in lines[0], lines[0]
    return lines[0]


def test_good_version_deploys_and_slow_version_is_reverted(tmp_path: Path) -> None:
    with start_api_env(tmp_path) as api:
        good = api.deploy("churn_v1")
        assert good.returncode == 0, good.stderr
        assert api.deployed_version() == "churn_v1"
        assert api.deployer_get(f"api-deployer/deployments/{DEPLOYMENT}").status_code == 200
        stage = api.stage("deploy")
        assert stage["outcome"] == "SUCCESS"
        load = stage["details"]["gates"][0]["load"]
        assert load["requests"] > 0 and load["errors"] == 0 and load["p95Ms"] < 150
        assert stage["details"]["gates"][0]["correctness"]["score"] == 1.0

        api.set_behaviour(latency_ms=250)
        slow = api.deploy("churn_v2_slow")
        assert slow.returncode == 3, (slow.stdout, slow.stderr)  # a failed gate keeps exit 3, reverted or not
        line = _one_error_line(slow.stderr)
        assert (
            "load gate failed on churn_v2_slow" in line and "p95" in line and "reverted to churn_v1" in line
        )
        assert api.deployed_version() == "churn_v1"  # read back from the API Deployer
        assert api.stage("deploy")["outcome"] == "ROLLED_BACK"
        finals = [r for r in api.deployment_records() if r["environment"] == LEDGER_NAME]
        assert [r["outcome"] for r in finals] == ["SUCCEEDED", "FAILED_ROLLED_BACK"]
        assert finals[-1]["detail"]["activeBundleId"] == "churn_v1"
        reverts = [r for r in api.audit() if r["operation"] == "api_revert"]
        assert [(r["outcome"], r["bundleId"]) for r in reverts] == [("VERIFIED", "churn_v1")]
        junit = (api.out_dir / "reports" / "api-churn-prod.xml").read_text()
        assert 'name="load"' in junit and "<failure" in junit
        page = (api.out_dir / "reports" / "api-churn-prod.html").read_text()
        assert (
            "Gates on version churn_v2_slow: failed" in page and "Gates on version churn_v1: passed" in page
        )
        assert "<script" not in page and "style=" not in page
        charts = sorted(p.name for p in (api.out_dir / "reports").glob("api-churn-prod-*.svg"))
        assert charts == ["api-churn-prod-0-latency-histogram.svg", "api-churn-prod-0-latency-over-time.svg"]

        status = api.mlcd("api", "status", "--service", "churn", "--env", "prod")
        assert status.returncode == 0, status.stderr
        assert "version: churn_v1" in status.stdout and "health: HEALTHY" in status.stdout

        # neither key in anything mlcd printed or wrote
        for key in (api.apinode.api_key, api.deployer.api_key):
            for proc in (good, slow, status):
                assert key not in proc.stdout + proc.stderr
            for path in api.out_dir.rglob("*"):
                assert not path.is_file() or key.encode() not in path.read_bytes(), path


def test_wrong_version_fails_correctness_and_is_reverted(tmp_path: Path) -> None:
    with start_api_env(tmp_path) as api:
        assert api.deploy("churn_v1").returncode == 0
        api.set_behaviour(degraded=True)
        wrong = api.deploy("churn_v2_wrong")
        assert wrong.returncode == 3, wrong.stderr
        line = _one_error_line(wrong.stderr)
        assert "correctness gate failed on churn_v2_wrong" in line and "accuracy 0 below 0.9" in line
        assert api.deployed_version() == "churn_v1"
        gates = api.stage("deploy")["details"]["gates"]
        assert gates[0]["load"] is None  # load is not run on a version that answers wrongly
        assert gates[1]["version"] == "churn_v1" and gates[1]["correctness"]["passed"]  # checked after revert
        # the API node really serves the reverted model again: the same record is answered as labelled
        from support.apienv import labelled_requests

        record = labelled_requests(1)[0]
        assert api.predict(record["features"])["result"]["prediction"] == record["expected"]


@pytest.mark.slow
def test_first_deploy_failing_has_nothing_to_revert_to(tmp_path: Path) -> None:
    with start_api_env(tmp_path) as api:
        api.set_behaviour(error_rate=1.0)
        proc = api.deploy("churn_v1_broken")
        assert proc.returncode == 3, proc.stderr
        line = _one_error_line(proc.stderr)
        assert "first deployment" in line
        assert api.deployed_version() == "churn_v1_broken"
        assert [r["outcome"] for r in api.deployment_records()] == ["FAILED_NEEDS_ATTENTION"]


@pytest.mark.slow
def test_manual_revert_goes_back_to_the_version_before_the_last_deploy(tmp_path: Path) -> None:
    with start_api_env(tmp_path) as api:
        assert api.deploy("churn_v1").returncode == 0
        assert api.deploy("churn_v2").returncode == 0
        proc = api.mlcd("api", "revert", "--service", "churn", "--env", "prod", "--reason", "drift")
        assert proc.returncode == 0, proc.stderr
        assert api.deployed_version() == "churn_v1"
        assert api.stage("revert")["outcome"] == "ROLLED_BACK"
        again = api.mlcd("api", "gate", "--service", "churn", "--env", "prod")
        assert again.returncode == 0, again.stderr


def test_bad_input_is_one_line_exit_2_and_changes_nothing(tmp_path: Path) -> None:
    with start_api_env(tmp_path) as api:
        unknown = api.mlcd("api", "deploy", "--service", "chrun", "--env", "prod", "--version", "v1")
        assert unknown.returncode == 2
        assert "did you mean 'churn'" in _one_error_line(unknown.stderr)

        no_env = api.mlcd("api", "deploy", "--service", "churn", "--env", "test", "--version", "v1")
        assert no_env.returncode == 2
        assert "no environment 'test'" in _one_error_line(no_env.stderr)

        requests_file = api.root / "churn_requests.jsonl"
        good_lines = requests_file.read_text()
        requests_file.write_text(good_lines + '{"features": {"tenure_months": 3}}\n')
        malformed = api.deploy("v1")
        assert malformed.returncode == 2
        assert "churn_requests.jsonl:41: 'expected' is missing" in _one_error_line(malformed.stderr)
        requests_file.write_text(good_lines)

        config = api.root / "mlcd.yaml"
        text = config.read_text()
        config.write_text(text.replace("infra: api-prod", "infra: api-nowhere"))
        infra = api.deploy("v1")
        assert infra.returncode == 2
        assert "no infrastructure 'api-nowhere'" in _one_error_line(infra.stderr)
        config.write_text(text.replace("- predict_churn", "- predict_chrun"))
        endpoint = api.deploy("v1")
        assert endpoint.returncode == 2
        assert "no endpoint 'predict_chrun'" in _one_error_line(endpoint.stderr)
        config.write_text(text.replace("concurrency: 4", "concurrency: 0"))
        zero = api.deploy("v1")
        assert zero.returncode == 2 and "concurrency" in _one_error_line(zero.stderr)
        config.write_text(text)

        # nothing was packaged, published or deployed by any of them
        assert api.deployer_get("api-deployer/services/churn").status_code == 404
        assert api.deployed_version() is None
        assert api.deployment_records() == []


@pytest.mark.slow
def test_api_node_down_or_answering_html_is_exit_6_and_changes_nothing(tmp_path: Path) -> None:
    import json
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    with start_api_env(tmp_path) as api:
        assert api.deploy("churn_v1").returncode == 0
        html = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # POST: 501, an HTML page
        threading.Thread(target=html.serve_forever, daemon=True).start()
        infras_path = api.deployer.data_dir / "infras.json"
        infras = json.loads(infras_path.read_text())
        try:
            infras["api-prod"]["apiNodes"][0]["url"] = f"http://127.0.0.1:{html.server_address[1]}"
            infras_path.write_text(json.dumps(infras))
            proc = api.deploy("churn_v2")
            assert proc.returncode == 6, proc.stderr
            assert "not JSON" in _one_error_line(proc.stderr)
        finally:
            html.shutdown()
            html.server_close()
        infras["api-prod"]["apiNodes"][0]["url"] = "http://127.0.0.1:9"  # nothing listens there
        infras_path.write_text(json.dumps(infras))
        down = api.deploy("churn_v2")
        assert down.returncode == 6
        assert "no answer" in _one_error_line(down.stderr)
        gate = api.mlcd("api", "gate", "--service", "churn", "--env", "prod")
        assert gate.returncode == 6
        # nothing changed: v2 never packaged, v1 still deployed, one deployment record (v1's)
        published = api.deployer_get("api-deployer/services/churn").json()["packages"]
        assert [p["id"] for p in published] == ["churn_v1"]
        assert api.deployed_version() == "churn_v1"
        assert [r["outcome"] for r in api.deployment_records()] == ["SUCCEEDED"]


@pytest.mark.slow
def test_regression_gate_reverts_a_version_slower_than_the_live_one(tmp_path: Path) -> None:
    from support.apienv import DEFAULT_GATES

    load = dict(DEFAULT_GATES["load"], p95_ms=5000, max_p95_ratio=3)  # the absolute budget alone would pass
    with start_api_env(tmp_path, gates={**DEFAULT_GATES, "load": load}) as api:
        assert api.deploy("churn_v1").returncode == 0
        assert api.stage("deploy")["details"]["gates"][0]["baseline"] is None  # nothing live to compare with
        api.set_behaviour(latency_ms=120)
        slower = api.deploy("churn_v2")
        assert slower.returncode == 3, slower.stderr
        assert "the live version's" in _one_error_line(slower.stderr)
        assert api.deployed_version() == "churn_v1"
        baseline = api.stage("deploy")["details"]["gates"][0]["baseline"]
        assert baseline["requests"] > 0 and baseline["p95Ms"] < 120
