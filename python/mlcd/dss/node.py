"""`DSSNode`: every DSS operation mlcd uses, on one design or automation node.

Reads (GET), deletes and same-content PUTs are retried on transient faults.
Calls with a side effect that must not happen twice (run a scenario, import a
bundle, create a project from a bundle, activate, export) are sent once; if
that attempt fails transiently, the node's state is read (is the bundle now
imported / active / exported? did a run start after our trigger?) and the call
is either reported done or sent again, within the retry policy. Where DSS's
answers have more than one shape, :mod:`mlcd.dss.answers` reads them all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlcd.dss import answers
from mlcd.dss.answers import REMAPPING_KEY, remappings_of
from mlcd.dss.errors import (
    DSSBadRequest,
    DSSConflict,
    DSSError,
    DSSForbidden,
    DSSSettingsNotKept,
    DSSUnauthorized,
    DSSUnreachable,
)
from mlcd.dss.http import READ_TIMEOUT_MESSAGE
from mlcd.dss.nodebase import BACKGROUND_WAIT_S
from mlcd.dss.nodebase import q as _q
from mlcd.dss.scenario_calls import RUN_START_SLACK_MS, ScenarioCalls
from mlcd.dss.transfer import MultipartFile, Progress, Transfer, bundle_manifest, receive_to_file

log = logging.getLogger("mlcd.dss")

__all__ = ["BACKGROUND_WAIT_S", "REMAPPING_KEY", "RUN_START_SLACK_MS", "DSSNode", "remappings_of"]


class DSSNode(ScenarioCalls):
    """A client for one DSS node (design or automation).

    ``verify``: ``True``, a CA-bundle path, or ``False`` (warns). Every request has
    a connect and a read timeout; preload has its own (``preload_timeout``).
    ``project_standards_checks`` is sent with every export. ``sleep``/``clock``/``wall``
    are injectable for tests.
    """

    # -- node --------------------------------------------------------------------------------------
    def instance_info(self) -> dict[str, Any]:
        """GET /instance-info: ``nodeId``, ``nodeName``, ``nodeType``."""
        return dict(self._get("instance-info", "read instance info") or {})

    def auth_info(self) -> dict[str, Any]:
        """GET /auth/info: ``authIdentifier``, ``groups``."""
        return dict(self._get("auth/info", "check the API key") or {})

    def get_project(self, key: str) -> dict[str, Any]:
        """GET /projects/{key}: the project summary (DSSNotFound if absent)."""
        return dict(self._get(f"projects/{_q(key)}", f"read project {key}") or {})

    def project_exists(self, key: str) -> bool:
        """Whether project ``key`` exists on the node: listed by GET /projects/ (as Dataiku's samples check).

        A missing project's own URL answers 401 on real DSS, not 404, so it is never asked.
        """
        return key in self.list_project_keys()

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
        path = f"projects/{_q(key)}/settings"
        with self._missing_project_is_not_found(path, op):
            self.http.call("PUT", path, operation=op, json=settings).close()

    def get_connection_remappings(self, key: str) -> dict[str, str]:
        """Source -> target connection remappings of the project's activation settings."""
        return remappings_of(self.get_project_settings(key))

    def set_connection_remappings(self, key: str, remappings: dict[str, str]) -> bool:
        """Write connection remappings into the project's settings, then read them back; False if already so.

        GET the settings, replace ``bundleContainerSettings.remapping.connections`` with
        ``[{"source": design connection, "target": node connection}]``, PUT the whole
        object back (every other key as read) and GET it again: if DSS did not keep the
        remappings (it ignores keys it does not know), :class:`DSSSettingsNotKept` (exit 8).
        """
        settings = self.get_project_settings(key)
        if remappings_of(settings) == remappings:
            return False
        self.set_project_settings(key, answers.with_remappings(settings, remappings))
        kept = remappings_of(self.get_project_settings(key))
        lost = answers.not_kept(remappings, (), kept)
        if lost:
            raise DSSSettingsNotKept(
                None, None, None,
                f"DSS did not keep the connection remapping(s) of {', '.join(lost)} written to "
                f"{REMAPPING_KEY} of project {key} (read back: {kept or 'none'}); nothing was activated",
                self.name, f"set connection remappings of project {key}",
                hint="check where this DSS version keeps activation remappings (mlcd doctor); until then "
                "create same-named connections on the node or set the remapping in DSS's UI",
            )  # fmt: skip
        return True

    # -- connections -------------------------------------------------------------------------------
    def list_connections(self) -> dict[str, dict[str, Any]]:
        """GET /admin/connections/ (needs an admin key): connection name -> its description.

        A key that may not list them gets 403 or 401 depending on the DSS version: both are
        :class:`DSSForbidden` here (the caller skips its pre-check with a note).
        """
        try:
            payload = self._get("admin/connections/", "list connections")
        except DSSUnauthorized as exc:
            raise DSSForbidden(
                exc.status, exc.error_type, exc.code, exc.dss_message, self.name, "list connections"
            ) from None
        if isinstance(payload, dict):
            return {str(k): dict(v) if isinstance(v, dict) else {} for k, v in payload.items()}
        return {str(c.get("name")): dict(c) for c in (payload or []) if isinstance(c, dict) and c.get("name")}

    # -- design node: exported bundles -------------------------------------------------------------
    def export_bundle(self, key: str, bundle_id: str, release_notes: str | None = None) -> dict[str, Any]:
        """PUT /projects/{key}/bundles/exported/{id}: export a bundle (sent once; state-checked on faults).

        ``evaluateProjectStandardsChecks`` is sent as dataikuapi does (``project_standards_checks``);
        Project Standards findings in the answer are logged and returned in ``projectStandardsFindings``.
        After a lost answer, a bundle the list shows as still building is waited for (DSS exports
        large projects in the background) before it is reported done.
        """
        op = f"export bundle {bundle_id} of project {key}"
        standards = str(self.project_standards_checks).lower()
        params: dict[str, Any] = {"evaluateProjectStandardsChecks": standards}
        if release_notes:
            params["releaseNotes"] = release_notes
        path = f"projects/{_q(key)}/bundles/exported/{_q(bundle_id)}"

        def send() -> dict[str, Any]:
            with self._missing_project_is_not_found(path, op):
                resp = self.http.send("PUT", path, operation=op, params=params)
            answer = dict(self._json(resp, op) or {})
            findings = answers.project_standards_findings(answer)
            for line in findings:
                log.warning("Project Standards on %s: %s", self.name, line)
            if findings:
                answer["projectStandardsFindings"] = findings
            return answer

        def check() -> dict[str, Any] | None:
            def look() -> dict[str, Any] | None:
                listed = self.list_exported_bundles(key)
                return next((b for b in listed if b.get("bundleId") == bundle_id), None)

            done = {"bundleId": bundle_id, "recovered": True}
            return self._wait_background(op, look, answers.export_in_progress, done)

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
            try:
                out = self._upload(
                    f"projects/{_q(key)}/bundles/imported/actions/importFromStream", archive, op, progress
                )
            except DSSConflict:
                # an earlier attempt (a killed mlcd) was still importing this very archive when we listed
                if bundle_id is not None and self._imported_same(key, bundle_id, archive):
                    return {"bundleId": bundle_id, "recovered": True}
                raise
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

    def _imported_same(self, key: str, bundle_id: str, archive: Path) -> bool:
        """Whether ``bundle_id`` is imported with this archive's export time (both must be known)."""
        mine = bundle_manifest(archive).get("exportedOn")
        for b in self.list_imported_bundles(key):
            if b.get("bundleId") == bundle_id:
                return mine not in (None, "", 0) and str(b.get("exportedOn")) == str(mine)
        return False

    def list_imported_bundles(self, key: str) -> list[dict[str, Any]]:
        """GET /projects/{key}/bundles/imported: bundle dicts, ``importedOn``/``exportedOn`` flat.

        Nested fields (``importState.importedOn``, ``exportManifest.exportUserInfo.exportedOn``)
        are copied to the top level when the top level lacks them.
        """
        payload = self._get(f"projects/{_q(key)}/bundles/imported", f"list imported bundles of project {key}")
        return [answers.imported_item(b) for b in self._list(payload, "bundles")]

    def preload_bundle(self, key: str, bundle_id: str) -> dict[str, Any]:
        """POST …/imported/{id}/actions/preload: builds the bundle's code envs; its report.

        Sent once, with its own read timeout (``preload_timeout``): a slow preload is never sent
        twice. Each report message is logged (shown); a failed report raises
        :class:`DSSBadRequest` with the failing code environment's message.
        """
        op = f"preload bundle {bundle_id} of project {key}"
        path = f"projects/{_q(key)}/bundles/imported/{_q(bundle_id)}/actions/preload"
        resp = self.http.send("POST", path, operation=op, read_timeout=self.preload_timeout)
        report = dict(self._json(resp, op) or {})
        for m in report.get("messages") or []:
            if isinstance(m, dict):
                level = logging.WARNING if m in answers.report_errors(report) else logging.INFO
                log.log(level, "preload of %s on %s: %s: %s", bundle_id, self.name,
                        str(m.get("severity") or "INFO").lower(), answers.message_text(m))  # fmt: skip
        if answers.report_failed(report):
            errors = answers.report_errors(report)
            first = errors[0] if errors else {}
            raise DSSBadRequest(
                None, None, str(first.get("code") or "") or None,
                f"the preload report says it failed: {answers.message_text(first) or 'no message'}",
                self.name, op, hint="fix the bundle's code environment on the node (see the message), "
                "then deploy again",
            )  # fmt: skip
        return report

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
        ``bundle_id`` the activation is reported done (``{"recovered": True}``); after a read
        timeout it is read again for a while (DSS may still be activating) before sending again.
        A refusal that comes as a report (``success: false`` or an ERROR/fatal message, and the
        bundle not active) raises :class:`DSSBadRequest` as the HTTP-error form does.
        """
        op = f"activate bundle {bundle_id} of project {key}"
        body: dict[str, Any] = {}
        if scenarios_active is not None:
            body["scenariosActiveOnActivation"] = dict(scenarios_active)
        if connection_remappings:
            self.set_connection_remappings(key, dict(connection_remappings))

        timed_out = False

        def send() -> dict[str, Any]:
            nonlocal timed_out
            try:
                resp = self.http.send(
                    "POST",
                    f"projects/{_q(key)}/bundles/imported/{_q(bundle_id)}/actions/activate",
                    operation=op,
                    json=body,
                )
            except DSSUnreachable as exc:
                timed_out = timed_out or exc.dss_message.startswith(READ_TIMEOUT_MESSAGE)
                raise
            return self._refused_by_report(key, bundle_id, op, dict(self._json(resp, op) or {}))

        def check() -> dict[str, Any] | None:
            done = {"bundleId": bundle_id, "recovered": True}
            if not timed_out:
                return done if self.active_bundle_id(key) == bundle_id else None
            waited = 0.0  # the lost activation may still be running on the node: give it time
            while waited < BACKGROUND_WAIT_S:
                if self.active_bundle_id(key) == bundle_id:
                    return done
                self.sleep(1.0)
                waited += 1.0
            return None

        return self._once_then_check(op, send, check)

    def _refused_by_report(self, key: str, bundle_id: str, op: str, report: dict[str, Any]) -> dict[str, Any]:
        """``report``, unless it refuses the activation (failed and ``bundle_id`` not active): then raise."""
        if not answers.report_failed(report) or self.active_bundle_id(key) == bundle_id:
            return report
        errors = answers.report_errors(report)
        first = errors[0] if errors else {}
        raise DSSBadRequest(
            None, None, str(first.get("code") or "") or None,
            f"DSS refused the activation: {answers.message_text(first) or 'the report says it failed'}",
            self.name, op,
        )  # fmt: skip

    def active_bundle_id(self, key: str) -> str | None:
        """``activeBundleState.bundleId`` of ``key`` from GET /projects/; None if no bundle or project."""
        for project in self.list_projects():
            if project.get("projectKey") == key:
                state = project.get("activeBundleState") or {}
                bid = state.get("bundleId") if isinstance(state, dict) else None
                return str(bid) if bid else None
        return None
