"""Scenario and future calls of a DSS node (mixed into :class:`~mlcd.dss.node.DSSNode`).

Running a scenario is never blindly retried: after a transient fault the
scenario's last runs tell whether our trigger started one.
"""

from __future__ import annotations

from typing import Any

from mlcd.dss.errors import DSSError, DSSUnreachable
from mlcd.dss.http import READ_TIMEOUT_MESSAGE
from mlcd.dss.nodebase import NodeBase
from mlcd.dss.nodebase import q as _q

# A run whose start is at most this long before our trigger time still counts as ours
# (tolerates clock skew between mlcd and the node).
RUN_START_SLACK_MS = 2000


class ScenarioCalls(NodeBase):
    """GET/POST on ``projects/{key}/scenarios/...`` and ``futures/...``."""

    # -- scenarios ---------------------------------------------------------------------------------
    def list_scenarios(self, key: str) -> list[dict[str, Any]]:
        """GET /projects/{key}/scenarios/: dicts with ``id``, ``name``, ``active``, ``running``..."""
        return self._list(
            self._get(f"projects/{_q(key)}/scenarios/", f"list scenarios of project {key}"), "scenarios"
        )

    def run_scenario(self, key: str, sid: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST …/scenarios/{sid}/run: the trigger fire (``trigger.id``, ``runId``, ``cancelled``).

        Never blindly retried: after a transient fault, a run of ``sid`` that
        started after our trigger (GET get-last-runs) means the trigger worked; the
        answer is then ``{"recovered": True, "scenarioRun": <run>, "cancelled": False}``.
        """
        op = f"run scenario {sid} of project {key}"
        trigger_ms = 0
        unanswered = False  # the trigger reached the node but no answer came: it may still be processed

        def send() -> dict[str, Any]:
            nonlocal trigger_ms, unanswered
            trigger_ms = int(self.wall() * 1000)
            try:
                resp = self.http.send(
                    "POST", f"projects/{_q(key)}/scenarios/{_q(sid)}/run", operation=op, json=params or {}
                )
            except DSSUnreachable as exc:
                unanswered = exc.dss_message.startswith(READ_TIMEOUT_MESSAGE)
                raise
            return dict(self._json(resp, op) or {})

        def ours() -> dict[str, Any] | None:
            for run in self.get_last_runs(key, sid, limit=5):
                rid = str(run.get("runId") or "")
                start = run.get("start") or 0
                if rid and isinstance(start, int | float) and start >= trigger_ms - RUN_START_SLACK_MS:
                    return {"recovered": True, "cancelled": False, "runId": None, "scenarioRun": run}
            return None

        def check() -> dict[str, Any] | None:
            if unanswered:
                # the node may still be working on our trigger: resending could start a second run,
                # so wait (bounded) for the run to appear, and never send again
                waited = 0.0
                while waited <= max(self.http.read_timeout, 5.0):
                    found = ours()
                    if found is not None:
                        return found
                    self.sleep(1.0)
                    waited += 1.0
                raise DSSError(
                    None,
                    None,
                    None,
                    "the node did not answer the trigger in time and no run of it appeared; "
                    "not sent again, to avoid a second run",
                    self.name,
                    op,
                    hint="check the scenario's last runs on the node, then run the stage again",
                )
            for _ in range(3):
                found = ours()
                if found is not None:
                    return found
                running = any(s.get("id") == sid and s.get("running") for s in self.list_scenarios(key))
                if not running:
                    return None  # no run of ours and nothing running: safe to trigger again
                self.sleep(1.0)  # running but not visible yet: give it a moment
            raise DSSError(
                None, None, None, "a run is in progress but it is not known whether it is ours", self.name, op
            )

        return self._once_then_check(op, send, check)

    def get_run_for_trigger(
        self, key: str, sid: str, trigger_id: str, trigger_run_id: str
    ) -> dict[str, Any] | None:
        """GET …/get-run-for-trigger: the ``scenarioRun`` dict once the run exists, else None."""
        payload = self._get(
            f"projects/{_q(key)}/scenarios/{_q(sid)}/get-run-for-trigger",
            f"find the run of scenario {sid} of project {key}",
            params={"triggerId": trigger_id, "triggerRunId": trigger_run_id},
        )
        run = payload.get("scenarioRun") if isinstance(payload, dict) else None
        return dict(run) if isinstance(run, dict) else None

    def get_trigger_fire(self, key: str, sid: str, trigger_id: str, trigger_run_id: str) -> dict[str, Any]:
        """GET …/scenarios/trigger/{sid}/{triggerId}?triggerRunId=: the fire's state (``cancelled``)."""
        return dict(
            self._get(
                f"projects/{_q(key)}/scenarios/trigger/{_q(sid)}/{_q(trigger_id)}",
                f"read the trigger fire of scenario {sid} of project {key}",
                params={"triggerRunId": trigger_run_id},
            )
            or {}
        )

    def get_last_runs(
        self, key: str, sid: str, limit: int = 10, only_finished: bool = False
    ) -> list[dict[str, Any]]:
        """GET …/get-last-runs: scenarioRun dicts, newest first."""
        payload = self._get(
            f"projects/{_q(key)}/scenarios/{_q(sid)}/get-last-runs",
            f"list last runs of scenario {sid} of project {key}",
            params={"limit": limit, "onlyFinishedRuns": "true" if only_finished else "false"},
        )
        return self._list(payload, "runs")

    def get_run(self, key: str, sid: str, run_id: str) -> dict[str, Any]:
        """GET …/scenarios/{sid}/{runId}/: ``{"scenarioRun": {...}, "stepRuns": [...]}``."""
        return dict(
            self._get(
                f"projects/{_q(key)}/scenarios/{_q(sid)}/{_q(run_id)}/",
                f"read run {run_id} of scenario {sid} of project {key}",
            )
            or {}
        )

    def get_run_log(self, key: str, sid: str, run_id: str, step_id: str | None = None) -> str:
        """GET …/{runId}/log: the run's (or one step's) log as text."""
        op = f"read the log of run {run_id} of scenario {sid} of project {key}"
        resp = self.http.call(
            "GET",
            f"projects/{_q(key)}/scenarios/{_q(sid)}/{_q(run_id)}/log",
            operation=op,
            params={"stepId": step_id} if step_id else None,
        )
        try:
            return resp.text
        finally:
            resp.close()

    def get_run_junit(self, key: str, sid: str, run_id: str) -> bytes:
        """GET …/{runId}/scenario-run-report: DSS's JUnit XML of one run."""
        op = f"read the JUnit report of run {run_id} of scenario {sid} of project {key}"
        resp = self.http.call(
            "GET", f"projects/{_q(key)}/scenarios/{_q(sid)}/{_q(run_id)}/scenario-run-report", operation=op
        )
        try:
            return resp.content
        finally:
            resp.close()

    def abort_scenario(self, key: str, sid: str) -> None:
        """POST …/scenarios/{sid}/abort (a no-op if not running, so retried)."""
        op = f"abort scenario {sid} of project {key}"
        self.http.call("POST", f"projects/{_q(key)}/scenarios/{_q(sid)}/abort", operation=op, json={}).close()

    # -- futures -----------------------------------------------------------------------------------
    def get_future(self, job_id: str, peek: bool = False) -> dict[str, Any]:
        """GET /futures/{id}?peek=: the future's state (``hasResult``, ``result``, ``alive``...)."""
        return dict(
            self._get(
                f"futures/{_q(job_id)}", f"read future {job_id}", params={"peek": "true" if peek else "false"}
            )
            or {}
        )

    def abort_future(self, job_id: str) -> None:
        """DELETE /futures/{id}."""
        self.http.call("DELETE", f"futures/{_q(job_id)}", operation=f"abort future {job_id}").close()
