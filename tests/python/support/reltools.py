"""Tools of the reliability suite: a fast stand-in pipeline, an independent node reader,
node-state snapshots, secret scanning and the results file `scripts/reliability.py` aggregates.

The node reader talks to the stand-in with plain ``requests`` (not mlcd's client), so the
suite checks the nodes with code that is not under test.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.pipeline_env import PipelineEnv, key_env_name, start_pipeline_env

RESULTS_ENV = "MLCD_RELIABILITY_RESULTS"  # directory; set by scripts/reliability.py


def record_result(category: str, **data: Any) -> None:
    """Append one result line for the summary table (only when scripts/reliability.py runs the suite)."""
    out = os.environ.get(RESULTS_ENV)
    if not out:
        return
    path = Path(out) / "results.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"category": category, **data}, sort_keys=True) + "\n")


# -- the pipeline --------------------------------------------------------------------------------
FAST_TIMEOUTS = {"scenario": 30, "deploy": 60, "lock": 30}


def fast_pipeline(root: Path, *, read_timeout: float = 2.0, **kwargs: Any) -> PipelineEnv:
    """A design node + `test` and `prod` automation nodes with short client timeouts and fast scenarios.

    test runs TEST_PASS and TEST_FAIL_ON_VAR then smoke; prod runs smoke only (the usual shape).
    """
    options = {
        "test": {"tests": {"scenarios": ["TEST_PASS", "TEST_FAIL_ON_VAR"]}, "timeouts": dict(FAST_TIMEOUTS)},
        "prod": {"tests": False, "timeouts": dict(FAST_TIMEOUTS)},
    }
    pipe = start_pipeline_env(root, envs=("test", "prod"), env_options=options, **kwargs)
    try:
        for name in ("test", "prod"):
            cfg = pipe.env_config(name)
            cfg["read_timeout"] = read_timeout
            cfg["connect_timeout"] = 1
        pipe.config["design"]["read_timeout"] = max(read_timeout, 5.0)
        pipe.config["design"]["connect_timeout"] = 1
        pipe.write_config()
        pipe.set_design_variables(slow_seconds=0.1)
        pipe.env["MLCD_LOCK_DIR"] = str(root / "locks")
    except BaseException:
        pipe.stop()
        raise
    return pipe


# -- reading the nodes (independently of mlcd) ---------------------------------------------------
class NodeReader:
    """Plain-HTTP reads of a stand-in node's state, and a smoke check, with its API key."""

    def __init__(self, url: str, api_key: str, verify: bool | str = True) -> None:
        self.base = url.rstrip("/") + "/public/api/"
        self.session = requests.Session()
        self.session.auth = (api_key, "")
        self.verify = verify  # passed per request: REQUESTS_CA_BUNDLE would win over a session setting

    def get(self, path: str, **params: Any) -> Any:
        """GET a DSS path; raise on HTTP errors."""
        resp = self.session.get(self.base + path, params=params or None, timeout=10, verify=self.verify)
        resp.raise_for_status()
        return resp.json()

    def projects(self) -> dict[str, str | None]:
        """``{project key: active bundle id or None}``."""
        out: dict[str, str | None] = {}
        for p in self.get("projects/"):
            state = p.get("activeBundleState") or {}
            out[str(p["projectKey"])] = state.get("bundleId") or None
        return out

    def active(self, key: str) -> str | None:
        """The active bundle of project ``key`` (None if none or no project)."""
        return self.projects().get(key)

    def imported(self, key: str) -> list[str]:
        """Ids of the bundles imported in ``key`` (automation nodes)."""
        return sorted(str(b["bundleId"]) for b in self.get(f"projects/{key}/bundles/imported")["bundles"])

    def exported(self, key: str) -> list[str]:
        """Ids of the bundles exported from ``key`` (design nodes)."""
        return sorted(str(b["bundleId"]) for b in self.get(f"projects/{key}/bundles/exported")["bundles"])

    def standard_variables(self, key: str) -> dict[str, Any]:
        """The project's standard variables (on automation: those of the active bundle)."""
        data = self.get(f"projects/{key}/variables/")
        return dict(data.get("standard") or {})

    def runs(self, key: str, sid: str, limit: int = 200) -> list[dict[str, Any]]:
        """The scenario's runs, newest first (``scenarioRun`` dicts)."""
        data = self.get(f"projects/{key}/scenarios/{sid}/get-last-runs", limit=limit)
        return list(data)

    def running(self, key: str, sid: str) -> bool:
        """Whether the scenario is running (or about to) on the node."""
        return any(s["id"] == sid and s.get("running") for s in self.get(f"projects/{key}/scenarios/"))

    def run_scenario(self, key: str, sid: str, timeout: float = 60.0) -> str:
        """Run ``sid`` once and wait for its outcome (SUCCESS, FAILED, ...).

        A run still going (e.g. one a killed mlcd triggered) is waited for first: the
        node cancels a trigger of a scenario that is already running.
        """
        give_up = time.monotonic() + timeout
        while True:
            while self.running(key, sid):
                assert time.monotonic() < give_up, f"scenario {sid} kept running for {timeout}s"
                time.sleep(0.2)
            resp = self.session.post(
                self.base + f"projects/{key}/scenarios/{sid}/run", json={}, timeout=10, verify=self.verify
            )
            resp.raise_for_status()
            fire = resp.json()
            if not fire.get("cancelled"):
                break
            assert time.monotonic() < give_up, f"every trigger of {sid} was cancelled for {timeout}s"
        trigger_id, trigger_run = fire["trigger"]["id"], fire["runId"]
        while time.monotonic() < give_up:
            found = self.get(
                f"projects/{key}/scenarios/{sid}/get-run-for-trigger",
                triggerId=trigger_id, triggerRunId=trigger_run,
            )
            run = found.get("scenarioRun") if isinstance(found, dict) else None
            if run and run.get("result"):
                return str(run["result"]["outcome"])
            time.sleep(0.2)
        raise AssertionError(f"scenario {sid} did not finish within {timeout}s")

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def reader(pipe: PipelineEnv, node: str) -> NodeReader:
    """A :class:`NodeReader` of ``design`` or an environment's node."""
    if node == "design":
        return NodeReader(pipe.design.url, pipe.keys["DSS_DESIGN_API_KEY"])
    return NodeReader(pipe.automation[node].url, pipe.keys[key_env_name(node)])


def node_state(pipe: PipelineEnv) -> dict[str, Any]:
    """Everything a bad command must not change: projects, active, imported and exported bundles."""
    state: dict[str, Any] = {}
    design = reader(pipe, "design")
    try:
        projects = design.projects()
        exported = {k: design.exported(k) for k in projects}
        state["design"] = {"projects": sorted(projects), "exported": exported}
    finally:
        design.close()
    for env in pipe.automation:
        r = reader(pipe, env)
        try:
            projects = r.projects()
            state[env] = {"active": projects, "imported": {k: r.imported(k) for k in projects}}
        finally:
            r.close()
    return state


def bundle_tag(pipe: PipelineEnv, env: str) -> str | None:
    """The ``model_version`` variable of the active bundle on ``env`` (the content check)."""
    r = reader(pipe, env)
    try:
        if r.active(pipe.project_key) is None:
            return None
        return str(r.standard_variables(pipe.project_key).get("model_version"))
    finally:
        r.close()


def smoke_passes(pipe: PipelineEnv, env: str) -> bool:
    """Run the environment's smoke scenario on its node directly; True when it succeeds."""
    r = reader(pipe, env)
    try:
        return r.run_scenario(pipe.project_key, "TEST_SMOKE") == "SUCCESS"
    finally:
        r.close()


def deployment_records(pipe: PipelineEnv, since: int = 0) -> list[dict[str, Any]]:
    """The audit trail's ``deployment`` records from line ``since`` on."""
    return [r for r in pipe.audit_records()[since:] if r["operation"] == "deployment"]


# -- output checks -------------------------------------------------------------------------------
def one_line_error(stderr: str) -> str:
    """Assert ``stderr`` is exactly one non-empty line without a traceback; return it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one error line on stderr, got {len(lines)}: {stderr!r}"
    return lines[0]
