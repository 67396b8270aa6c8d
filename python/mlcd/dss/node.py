"""`DSSNode`: every DSS operation mlcd uses, on one design or automation node.

Reads (GET), deletes and same-content PUTs are retried on transient faults.
Calls with a side effect that must not happen twice (run a scenario, import a
bundle, create a project from a bundle, activate, export) are sent once; if
that attempt fails transiently, the node's state is read (is the bundle now
imported / active / exported? did a run start after our trigger?) and the call
is either reported done or sent again, within the retry policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from mlcd.dss.errors import DSSError, DSSNotFound, DSSServerError, DSSUnreachable
from mlcd.dss.http import READ_TIMEOUT_MESSAGE, Clock, DSSSession, RetryPolicy, Sleep, fault_reason
from mlcd.dss.transfer import MultipartFile, Progress, Transfer, bundle_manifest, receive_to_file

log = logging.getLogger("mlcd.dss")

T = TypeVar("T")

# A run whose start is at most this long before our trigger time still counts as ours
# (tolerates clock skew between mlcd and the node).
RUN_START_SLACK_MS = 2000


def remappings_of(settings: dict[str, Any]) -> dict[str, str]:
    """``bundleActivationSettings.connectionsRemapping`` of project settings as ``{source: target}``."""
    activation = settings.get("bundleActivationSettings")
    items = activation.get("connectionsRemapping") if isinstance(activation, dict) else None
    return {
        str(r["source"]): str(r["target"])
        for r in (items if isinstance(items, list) else [])
        if isinstance(r, dict) and r.get("source") and r.get("target")
    }


def _q(part: str) -> str:
    return quote(str(part), safe="")


class DSSNode:
    """A client for one DSS node (design or automation).

    ``verify``: ``True``, a CA-bundle path, or ``False`` (warns). Every request has
    a connect and a read timeout. ``sleep``/``clock``/``wall`` are injectable for tests.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        name: str = "design",
        verify: bool | str = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.http = DSSSession(
            url,
            api_key,
            name=name,
            verify=verify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
            sleep=sleep,
            clock=clock,
            session=session,
        )
        self.name = name
        self.url = self.http.url
        self.wall = wall

    def __repr__(self) -> str:
        return f"DSSNode(name={self.name!r}, url={self.url!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()

    @property
    def sleep(self) -> Sleep:
        """The sleep function used between retries and polls."""
        return self.http.sleep

    @property
    def clock(self) -> Clock:
        """The monotonic clock used for deadlines."""
        return self.http.clock

    # -- plumbing ----------------------------------------------------------------------------------
    def _json(self, resp: requests.Response, operation: str) -> Any:
        try:
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                raise DSSServerError(
                    resp.status_code,
                    None,
                    None,
                    "the node answered with something that is not JSON",
                    self.name,
                    operation,
                ) from None
        finally:
            resp.close()

    def _get(self, path: str, operation: str, params: dict[str, Any] | None = None) -> Any:
        return self._json(self.http.call("GET", path, operation=operation, params=params), operation)

    def _list(self, payload: Any, key: str) -> list[dict[str, Any]]:
        if isinstance(payload, dict):
            payload = payload.get(key, [])
        return [x for x in (payload or []) if isinstance(x, dict)]

    def _once_then_check(
        self,
        operation: str,
        send: Callable[[], T],
        check: Callable[[], T | None],
    ) -> T:
        """Send a non-idempotent call; on a transient fault read the node's state, then continue or retry."""
        policy = self.http.retry
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return send()
            except DSSError as exc:
                if not exc.transient:
                    raise
                last = exc
            log.warning(
                "%s on %s: %s; checking the node's state before trying again (attempt %d/%d)",
                operation,
                self.name,
                fault_reason(last),
                attempt,
                policy.max_attempts,
            )
            done = self._check_state(operation, last, check)
            if done is not None:
                return done
            if attempt >= policy.max_attempts or self.clock() - started >= policy.max_total_s:
                raise last
            delay = max(policy.backoff(attempt), last.retry_after or 0.0)
            self.sleep(min(delay, max(0.0, policy.max_total_s - (self.clock() - started))))
            # the lost request may still have been in progress on the node: look again before resending
            done = self._check_state(operation, last, check)
            if done is not None:
                return done

    def _check_state(self, operation: str, last: DSSError, check: Callable[[], T | None]) -> T | None:
        try:
            done = check()
        except DSSError as check_exc:
            raise DSSUnreachable(
                None,
                None,
                None,
                f"{last.dss_message or 'transient fault'}; the node's state could not be checked "
                f"afterwards ({check_exc.dss_message or type(check_exc).__name__}), so it is unknown "
                "whether the step took effect",
                self.name,
                operation,
                hint="look at the node (mlcd status) before running again",
            ) from None
        if done is not None:
            log.info("DSS %s: %s had taken effect despite the fault", self.name, operation)
        return done

    # -- node --------------------------------------------------------------------------------------
    def instance_info(self) -> dict[str, Any]:
        """GET /instance-info: ``nodeId``, ``nodeName``, ``nodeType``."""
        return dict(self._get("instance-info", "read instance info") or {})

    def auth_info(self) -> dict[str, Any]:
        """GET /auth/info: ``authIdentifier``, ``groups``."""
        return dict(self._get("auth/info", "check the API key") or {})

    # -- projects ----------------------------------------------------------------------------------
    def list_projects(self) -> list[dict[str, Any]]:
        """GET /projects/: one dict per project (``projectKey``, ``activeBundleState``...)."""
        return self._list(self._get("projects/", "list projects"), "projects")

    def get_project(self, key: str) -> dict[str, Any]:
        """GET /projects/{key}: the project summary (DSSNotFound if absent)."""
        return dict(self._get(f"projects/{_q(key)}", f"read project {key}") or {})

    def project_exists(self, key: str) -> bool:
        """Whether project ``key`` exists on the node."""
        try:
            self.get_project(key)
        except DSSNotFound:
            return False
        return True

    def get_variables(self, key: str) -> dict[str, Any]:
        """GET /projects/{key}/variables/: ``{"standard": {...}, "local": {...}}``."""
        return dict(self._get(f"projects/{_q(key)}/variables/", f"read variables of project {key}") or {})

    def set_variables(self, key: str, obj: dict[str, Any]) -> None:
        """PUT /projects/{key}/variables/ with the whole object (both ``standard`` and ``local``)."""
        if "standard" not in obj or "local" not in obj:
            raise DSSError(
                None,
                None,
                None,
                "variables must have both 'standard' and 'local'",
                self.name,
                f"set variables of project {key}",
            )
        op = f"set variables of project {key}"
        self.http.call("PUT", f"projects/{_q(key)}/variables/", operation=op, json=obj).close()

    def get_project_settings(self, key: str) -> dict[str, Any]:
        """GET /projects/{key}/settings: the whole settings object (as DSSProject.get_settings())."""
        return dict(self._get(f"projects/{_q(key)}/settings", f"read settings of project {key}") or {})

    def set_project_settings(self, key: str, settings: dict[str, Any]) -> None:
        """PUT /projects/{key}/settings with the whole object read by :meth:`get_project_settings`."""
        op = f"save settings of project {key}"
        self.http.call("PUT", f"projects/{_q(key)}/settings", operation=op, json=settings).close()

    def get_connection_remappings(self, key: str) -> dict[str, str]:
        """Source -> target connection remappings of the project's activation settings."""
        return remappings_of(self.get_project_settings(key))

    def set_connection_remappings(self, key: str, remappings: dict[str, str]) -> bool:
        """Write connection remappings into the project's activation settings; False if already so.

        GET the settings, replace ``bundleActivationSettings.connectionsRemapping`` with
        ``[{"source": design connection, "target": node connection}]``, PUT the whole
        object back (every other key as read). The key path is inferred (see docs/design.md).
        """
        settings = self.get_project_settings(key)
        if remappings_of(settings) == remappings:
            return False
        activation = settings.get("bundleActivationSettings")
        activation = dict(activation) if isinstance(activation, dict) else {}
        activation["connectionsRemapping"] = [
            {"source": source, "target": target} for source, target in sorted(remappings.items())
        ]
        settings["bundleActivationSettings"] = activation
        self.set_project_settings(key, settings)
        return True

    # -- connections -------------------------------------------------------------------------------
    def list_connections(self) -> dict[str, dict[str, Any]]:
        """GET /admin/connections/ (needs an admin key): connection name -> its description."""
        payload = self._get("admin/connections/", "list connections")
        if isinstance(payload, dict):
            return {str(k): dict(v) if isinstance(v, dict) else {} for k, v in payload.items()}
        return {str(c.get("name")): dict(c) for c in (payload or []) if isinstance(c, dict) and c.get("name")}

    # -- design node: exported bundles -------------------------------------------------------------
    def export_bundle(self, key: str, bundle_id: str, release_notes: str | None = None) -> dict[str, Any]:
        """PUT /projects/{key}/bundles/exported/{id}: export a bundle (sent once; state-checked on faults)."""
        op = f"export bundle {bundle_id} of project {key}"
        params = {"releaseNotes": release_notes} if release_notes else None

        def send() -> dict[str, Any]:
            resp = self.http.send(
                "PUT", f"projects/{_q(key)}/bundles/exported/{_q(bundle_id)}", operation=op, params=params
            )
            return dict(self._json(resp, op) or {})

        def check() -> dict[str, Any] | None:
            ids = [b.get("bundleId") for b in self.list_exported_bundles(key)]
            return {"bundleId": bundle_id, "recovered": True} if bundle_id in ids else None

        return self._once_then_check(op, send, check)

    def list_exported_bundles(self, key: str) -> list[dict[str, Any]]:
        """GET /projects/{key}/bundles/exported: list of bundle dicts (``bundleId``...)."""
        payload = self._get(f"projects/{_q(key)}/bundles/exported", f"list exported bundles of project {key}")
        return self._list(payload, "bundles")

    def download_bundle(
        self, key: str, bundle_id: str, dest: Path | str, progress: Progress | None = None
    ) -> Transfer:
        """Stream an exported bundle's archive to ``dest``; returns its path, size and sha256.

        A cut-off download is retried from scratch (GET is idempotent).
        """
        op = f"download bundle {bundle_id} of project {key}"
        path = f"projects/{_q(key)}/bundles/exported/{_q(bundle_id)}/archive"

        def attempt() -> Transfer:
            resp = self.http.send(
                "GET", path, operation=op, stream=True, headers={"Accept-Encoding": "identity"}
            )
            return receive_to_file(resp, Path(dest), node=self.name, operation=op, progress=progress)

        result: Transfer = self.http.retrying(attempt, op, label=f"GET /{path}")
        return result

    def delete_exported_bundle(self, key: str, bundle_id: str) -> None:
        """DELETE /projects/{key}/bundles/exported/{id}."""
        op = f"delete exported bundle {bundle_id} of project {key}"
        self.http.call("DELETE", f"projects/{_q(key)}/bundles/exported/{_q(bundle_id)}", operation=op).close()

    # -- automation node: imported bundles ---------------------------------------------------------
    def _upload(self, path: str, archive: Path, op: str, progress: Progress | None) -> Any:
        body = MultipartFile(Path(archive), field="file", progress=progress)
        resp = self.http.send(
            "POST", path, operation=op, data=body, headers={"Content-Type": body.content_type}
        )
        return self._json(resp, op)

    def create_project_from_bundle(
        self, archive: Path | str, progress: Progress | None = None
    ) -> dict[str, Any]:
        """POST /projectsFromBundle/ (multipart ``file``): a new project from a bundle archive."""
        archive = Path(archive)
        manifest = bundle_manifest(archive)
        project_key = str(manifest.get("projectKey") or "") or None
        op = f"create project {project_key or '?'} from bundle {archive.name}"

        def send() -> dict[str, Any]:
            return dict(self._upload("projectsFromBundle/", archive, op, progress) or {})

        def check() -> dict[str, Any] | None:
            if project_key is None:
                raise DSSError(None, None, None, "the archive names no project key", self.name, op)
            if self.project_exists(project_key):
                return {"projectKey": project_key, "recovered": True}
            return None

        return self._once_then_check(op, send, check)

    def import_bundle(
        self, key: str, archive: Path | str, progress: Progress | None = None, bundle_id: str | None = None
    ) -> dict[str, Any]:
        """POST …/bundles/imported/actions/importFromStream (multipart ``file``).

        Returns the node's answer (DSS sends none: then ``{}``) with ``bundleId``
        set when known (given, or read from the archive's manifest).
        """
        archive = Path(archive)
        bundle_id = bundle_id or (str(bundle_manifest(archive).get("bundleId") or "") or None)
        op = f"import bundle {bundle_id or archive.name} into project {key}"
        before: set[str] | None = None
        if bundle_id is None:
            before = {str(b.get("bundleId")) for b in self.list_imported_bundles(key)}

        def send() -> dict[str, Any]:
            out = self._upload(
                f"projects/{_q(key)}/bundles/imported/actions/importFromStream", archive, op, progress
            )
            result = dict(out) if isinstance(out, dict) else {}
            if bundle_id and "bundleId" not in result:
                result["bundleId"] = bundle_id
            return result

        def check() -> dict[str, Any] | None:
            now = {str(b.get("bundleId")) for b in self.list_imported_bundles(key)}
            if bundle_id is not None:
                return {"bundleId": bundle_id, "recovered": True} if bundle_id in now else None
            new = now - (before or set())
            if len(new) == 1:
                return {"bundleId": new.pop(), "recovered": True}
            return None

        return self._once_then_check(op, send, check)

    def list_imported_bundles(self, key: str) -> list[dict[str, Any]]:
        """GET /projects/{key}/bundles/imported: list of bundle dicts (``bundleId``...)."""
        payload = self._get(f"projects/{_q(key)}/bundles/imported", f"list imported bundles of project {key}")
        return self._list(payload, "bundles")

    def preload_bundle(self, key: str, bundle_id: str) -> dict[str, Any]:
        """POST …/imported/{id}/actions/preload (repeatable, so retried on transient faults)."""
        op = f"preload bundle {bundle_id} of project {key}"
        resp = self.http.call(
            "POST",
            f"projects/{_q(key)}/bundles/imported/{_q(bundle_id)}/actions/preload",
            operation=op,
            json={},
        )
        return dict(self._json(resp, op) or {})

    def activate_bundle(
        self,
        key: str,
        bundle_id: str,
        scenarios_active: dict[str, bool] | None = None,
        connection_remappings: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST …/imported/{id}/actions/activate; returns DSS's activation report.

        The body is ``{}`` or ``{"scenariosActiveOnActivation": {...}}`` (as dataikuapi
        sends): connection remappings are project settings. ``connection_remappings``,
        when given, are written there first (:meth:`set_connection_remappings`).
        Sent once; on a transient fault the active bundle is read: if it is now
        ``bundle_id`` the activation is reported done (``{"recovered": True}``).
        """
        op = f"activate bundle {bundle_id} of project {key}"
        body: dict[str, Any] = {}
        if scenarios_active is not None:
            body["scenariosActiveOnActivation"] = dict(scenarios_active)
        if connection_remappings:
            self.set_connection_remappings(key, dict(connection_remappings))

        def send() -> dict[str, Any]:
            resp = self.http.send(
                "POST",
                f"projects/{_q(key)}/bundles/imported/{_q(bundle_id)}/actions/activate",
                operation=op,
                json=body,
            )
            return dict(self._json(resp, op) or {})

        def check() -> dict[str, Any] | None:
            return (
                {"bundleId": bundle_id, "recovered": True}
                if self.active_bundle_id(key) == bundle_id
                else None
            )

        return self._once_then_check(op, send, check)

    def active_bundle_id(self, key: str) -> str | None:
        """``activeBundleState.bundleId`` of ``key`` from GET /projects/; None if no bundle or project."""
        for project in self.list_projects():
            if project.get("projectKey") == key:
                state = project.get("activeBundleState") or {}
                bid = state.get("bundleId") if isinstance(state, dict) else None
                return str(bid) if bid else None
        return None

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
