"""The stand-in's Flask application: DSS public API routes, auth, errors, test control.

The API blueprint is mounted twice, under ``/public/api`` (the documented base)
and ``/dip/publicapi`` (where dataikuapi sends requests).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import traceback
import uuid
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, Flask, Request, current_app, g, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from mlcd.sim import bundles
from mlcd.sim.auth import is_authorised
from mlcd.sim.errors import UNAUTHORIZED, SimError, bad_request, error_response, not_found
from mlcd.sim.faults import FaultMiddleware, FaultPlanError, FaultState
from mlcd.sim.scenarios import ScenarioRunner, parse_params
from mlcd.sim.store import Store, check_id, now_ms, read_json, write_json

DSS_VERSION = "15.2.0"
API_PREFIXES = ("/public/api", "/dip/publicapi")
ACTIVATE_FIELDS = frozenset({"scenariosActiveOnActivation"})
log = logging.getLogger("mlcd.sim")


class SimRequest(Request):
    """Request whose uploaded files stream into the node's data dir (never into memory)."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        store: Store = current_app.config["SIM_STORE"]
        fh = tempfile.NamedTemporaryFile(prefix="upload-", dir=store.uploads_dir, delete=False)  # noqa: SIM115
        uploads: list[str] = g.setdefault("sim_uploads", [])
        uploads.append(fh.name)
        return fh


# -- helpers ---------------------------------------------------------------------------------------


def _store() -> Store:
    store: Store = current_app.config["SIM_STORE"]
    return store


def _runner() -> ScenarioRunner:
    runner: ScenarioRunner = current_app.config["SIM_RUNNER"]
    return runner


def _require_role(role: str, action: str) -> None:
    if _store().role != role:
        raise SimError(
            400,
            f"{action} is only possible on a {role} node, this is a {_store().role} node",
            code="ERR_NOT_SUPPORTED_ON_THIS_NODE",
        )


def _json_body(allow_empty: bool = True) -> Any:
    raw = request.get_data(cache=False)
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_request("Request body must be JSON", code="ERR_INVALID_JSON")
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request("Request body is not valid JSON", code="ERR_INVALID_JSON") from None


def _bool_arg(name: str, default: bool) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes")


def _uploaded_archive() -> Path:
    """Path of the uploaded multipart field ``file`` (already on disk)."""
    try:
        files = request.files
    except (ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a real I/O error on the node (disk full...): 500
        raise bad_request(
            "Upload is truncated or not valid multipart/form-data (or its chunked encoding is broken)",
            code="ERR_UPLOAD_INVALID",
        ) from None
    upload = files.get("file")
    if upload is None:
        raise bad_request(
            "Upload must be multipart/form-data with a field named 'file'", code="ERR_UPLOAD_INVALID"
        )
    stream = upload.stream
    name = getattr(stream, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        stream.flush()
        return Path(name)
    # small part kept in memory by werkzeug: spill it to disk
    path = _store().new_upload_path()
    g.setdefault("sim_uploads", []).append(str(path))
    upload.save(str(path))
    return path


# -- API blueprint ---------------------------------------------------------------------------------

api = Blueprint("api", __name__)


@api.before_request
def _authenticate() -> Response | None:
    key: str = current_app.config["SIM_API_KEY"]
    if not is_authorised(request.headers.get("Authorization"), key):
        return error_response(
            401,
            {
                "errorType": UNAUTHORIZED,
                "message": "Not authenticated: no valid API key was provided",
                "detailedMessage": "Not authenticated: no valid API key was provided "
                "(use HTTP Basic with the key as user name, or Authorization: Bearer)",
                "code": "ERR_AUTH_API_KEY_INVALID",
            },
        )
    return None


@api.get("/instance-info")
def instance_info() -> Any:
    """GET /instance-info: node id, name and type."""
    store = _store()
    return jsonify(
        {
            "nodeId": store.node_id(),
            "nodeName": store.node_name,
            "nodeType": store.role.upper(),
            "dssVersion": DSS_VERSION,
            "simulated": True,
        }
    )


@api.get("/auth/info")
def auth_info() -> Any:
    """GET /auth/info: who the API key is."""
    admin = _key_is_admin()
    groups = ["administrators"] if admin else ["data_team"]
    return jsonify({"authIdentifier": "mlcd-sim-api-key", "groups": groups, "isAdmin": admin})


def _key_is_admin() -> bool:
    """Whether the node's API key has admin rights (``node.json`` ``apiKeyIsAdmin``, default true)."""
    return _store().node_config().get("apiKeyIsAdmin", True) is not False


@api.get("/admin/connections/")
def list_connections() -> Any:
    """GET /admin/connections/ (admin key only): connection name -> description, from node.json."""
    if not _key_is_admin():
        raise SimError(
            403, "Action forbidden: you are not an administrator", code="ERR_SECURITY_ADMIN_REQUIRED"
        )
    items = {}
    for name, conn in sorted(_store().connections().items()):
        conn = conn if isinstance(conn, dict) else {}
        items[name] = {
            "name": name,
            "type": str(conn.get("type") or "Filesystem"),
            "allowWrite": True,
            "usableBy": "ALL",
            "params": dict(conn.get("params") or {}),
        }
    return jsonify(items)


def _project_summary(key: str) -> dict[str, Any]:
    store = _store()
    if store.role == "design":
        meta = store.project_meta(store.design_project_dir(key), key)
        return {k: v for k, v in meta.items() if k != "connections"}
    project = store.auto_project(key)
    summary: dict[str, Any] = {
        "projectKey": key,
        "name": project.get("name", key),
        "owner": project.get("owner", "admin"),
        "description": project.get("description", ""),
    }
    if project.get("activeBundleId"):
        summary["activeBundleState"] = {
            "bundleId": project["activeBundleId"],
            "activatedOn": project.get("activatedOn", 0),
        }
    return summary


@api.get("/projects/")
def list_projects() -> Any:
    """GET /projects/: project summaries (with activeBundleState on automation)."""
    store = _store()
    keys = store.design_project_keys() if store.role == "design" else store.auto_project_keys()
    items = []
    for key in keys:
        with contextlib.suppress(SimError):
            items.append(_project_summary(key))
    return jsonify(items)


@api.get("/projects/<key>/")
def get_project(key: str) -> Any:
    """GET /projects/{key}: one project summary."""
    check_id(key, "project key")
    return jsonify(_project_summary(key))


@api.delete("/projects/<key>/")
def delete_project(key: str) -> Any:
    """DELETE /projects/{key}: delete now, answer a finished future."""
    store = _store()
    check_id(key, "project key")
    if not store.project_exists(key):
        raise not_found(f"Project '{key}'", code="ERR_PROJECT_NOT_FOUND")
    with store.lock:
        if store.role == "design":
            bundles.remove_tree(store.projects_dir / key)
            bundles.remove_tree(store.exported_dir(key))
        else:
            bundles.remove_tree(store.auto_dir(key))
    state = {
        "jobId": f"delete-{key}-{uuid.uuid4().hex[:8]}",
        "hasResult": True,
        "alive": False,
        "aborted": False,
        "result": {"anyMessage": False, "success": True, "messages": []},
        "progress": {"states": []},
        "startTime": now_ms(),
    }
    store.save_future(state)
    return jsonify(state)


@api.get("/projects/<key>/variables/")
def get_variables(key: str) -> Any:
    """GET /projects/{key}/variables/."""
    return jsonify(_store().get_variables(key))


@api.put("/projects/<key>/variables/")
def set_variables(key: str) -> Any:
    """PUT /projects/{key}/variables/ (both standard and local)."""
    _store().set_variables(key, _json_body(allow_empty=False))
    return Response(status=204)


@api.get("/projects/<key>/settings")
def get_settings(key: str) -> Any:
    """GET /projects/{key}/settings: the whole settings object."""
    check_id(key, "project key")
    return jsonify(_store().get_settings(key))


@api.put("/projects/<key>/settings")
def set_settings(key: str) -> Any:
    """PUT /projects/{key}/settings: replace the settings (connection remappings checked)."""
    check_id(key, "project key")
    _store().set_settings(key, _json_body(allow_empty=False))
    return Response(status=204)


# -- exported bundles (design) ---------------------------------------------------------------------


def _exported_item(meta: dict[str, Any]) -> dict[str, Any]:
    manifest = meta.get("manifest", {})
    return {
        "bundleId": meta["bundleId"],
        "projectKey": meta["projectKey"],
        "exportedOn": meta["exportedOn"],
        "exportedBy": meta["exportedBy"],
        "releaseNotes": meta.get("releaseNotes", ""),
        "size": meta.get("size", 0),
        "exportManifest": {
            "exportUserInfo": {
                "exportedOn": meta["exportedOn"],
                "exportedBy": {"login": meta["exportedBy"]},
            },
            "originalProjectKey": meta["projectKey"],
            "releaseNotes": meta.get("releaseNotes", ""),
            "requiredConnections": manifest.get("requiredConnections", []),
        },
    }


@api.put("/projects/<key>/bundles/exported/<bundle_id>")
def export_bundle(key: str, bundle_id: str) -> Any:
    """PUT /projects/{key}/bundles/exported/{id}: export a bundle (409 if the id exists)."""
    _require_role("design", "Exporting a bundle")
    store = _store()
    project_dir = store.design_project_dir(key)
    check_id(bundle_id, "bundle id")
    out_dir = store.exported_dir(key)
    meta_path = out_dir / f"{bundle_id}.json"
    with store.lock:
        if meta_path.exists():
            raise SimError(
                409,
                f"Bundle already exists: bundle '{bundle_id}' was already exported for project '{key}'",
                code="ERR_BUNDLE_ALREADY_EXISTS",
            )
        # reserve the id so a concurrent export of the same id fails too
        write_json(meta_path, {"bundleId": bundle_id, "projectKey": key, "exportedOn": 0, "pending": True})
    try:
        manifest = bundles.export_project(
            project_dir,
            store.project_meta(project_dir, key),
            bundle_id,
            request.args.get("releaseNotes"),
            "admin",
            out_dir / f"{bundle_id}.zip",
        )
    except BaseException:
        meta_path.unlink(missing_ok=True)
        raise
    meta = {
        "bundleId": bundle_id,
        "projectKey": key,
        "exportedOn": manifest["exportedOn"],
        "exportedBy": manifest["exportedBy"],
        "releaseNotes": manifest["releaseNotes"],
        "size": (out_dir / f"{bundle_id}.zip").stat().st_size,
        "manifest": {k: v for k, v in manifest.items() if k != "files"},
    }
    write_json(meta_path, meta)
    return jsonify(_exported_item(meta))


@api.get("/projects/<key>/bundles/exported")
def list_exported(key: str) -> Any:
    """GET /projects/{key}/bundles/exported."""
    _require_role("design", "Listing exported bundles")
    store = _store()
    store.design_project_dir(key)
    items = [_exported_item(m) for m in store.exported_bundles(key) if not m.get("pending")]
    return jsonify({"bundles": items})


def _exported_zip(key: str, bundle_id: str) -> Path:
    store = _store()
    store.design_project_dir(key)
    check_id(bundle_id, "bundle id")
    meta = read_json(store.exported_dir(key) / f"{bundle_id}.json")
    path = store.exported_dir(key) / f"{bundle_id}.zip"
    if not meta or meta.get("pending") or not path.is_file():
        raise not_found(f"Bundle '{bundle_id}' of project '{key}'", code="ERR_BUNDLE_NOT_FOUND")
    return path


@api.get("/projects/<key>/bundles/exported/<bundle_id>/archive")
def download_exported(key: str, bundle_id: str) -> Any:
    """GET /projects/{key}/bundles/exported/{id}/archive: the zip, streamed from disk."""
    _require_role("design", "Downloading a bundle")
    path = _exported_zip(key, bundle_id)
    fh = path.open("rb")
    size = os.fstat(fh.fileno()).st_size
    resp = Response(
        wrap_file(request.environ, fh, buffer_size=bundles.CHUNK),
        mimetype="application/zip",
        direct_passthrough=True,
    )
    resp.headers["Content-Length"] = str(size)
    resp.headers["Content-Disposition"] = f'attachment; filename="{bundle_id}.zip"'
    return resp


@api.delete("/projects/<key>/bundles/exported/<bundle_id>")
def delete_exported(key: str, bundle_id: str) -> Any:
    """DELETE /projects/{key}/bundles/exported/{id}."""
    _require_role("design", "Deleting an exported bundle")
    store = _store()
    path = _exported_zip(key, bundle_id)
    with store.lock:
        path.unlink(missing_ok=True)
        (store.exported_dir(key) / f"{bundle_id}.json").unlink(missing_ok=True)
    return jsonify({"deleted": bundle_id})


# -- imported bundles (automation) -----------------------------------------------------------------


def _import_archive(key: str, archive: Path, create: bool) -> dict[str, Any]:
    store = _store()
    manifest = bundles.read_manifest(archive)
    bundle_id = check_id(str(manifest["bundleId"]), "bundle id")
    with store.lock:
        exists = store.project_exists(key)
        if create and exists:
            raise SimError(
                409, f"Project '{key}' already exists on this node", code="ERR_PROJECT_ALREADY_EXISTS"
            )
        if not create and not exists:
            raise not_found(f"Project '{key}'", code="ERR_PROJECT_NOT_FOUND")
        target = store.imported_dir(key, bundle_id)
        if (target / "meta.json").exists():
            raise SimError(
                409,
                f"Bundle '{bundle_id}' is already imported in project '{key}'",
                code="ERR_BUNDLE_ALREADY_IMPORTED",
            )
        if create:
            store.save_auto_project(
                key,
                {
                    "projectKey": key,
                    "name": manifest.get("projectName", key),
                    "owner": "admin",
                    "createdOn": now_ms(),
                    "activeBundleId": None,
                    "variables": {"standard": {}, "local": {}},
                    "scenarioActive": {},
                },
            )
    try:
        bundles.unpack(archive, target / "content")
    except BaseException:
        bundles.remove_tree(target)
        if create:
            bundles.remove_tree(store.auto_dir(key))
        raise
    meta = {
        "bundleId": bundle_id,
        "projectKey": key,
        "importedOn": now_ms(),
        "exportedOn": manifest.get("exportedOn", 0),
        "exportedBy": manifest.get("exportedBy", ""),
        "releaseNotes": manifest.get("releaseNotes", ""),
        "originalProjectKey": manifest.get("projectKey"),
        "requiredConnections": list(manifest.get("requiredConnections") or []),
    }
    write_json(target / "meta.json", meta)
    return meta


@api.post("/projectsFromBundle/")
def project_from_bundle() -> Any:
    """POST /projectsFromBundle/: create a project from an uploaded bundle (not activated)."""
    _require_role("automation", "Creating a project from a bundle")
    archive = _uploaded_archive()
    manifest = bundles.read_manifest(archive)
    key = check_id(str(manifest["projectKey"]), "project key")
    meta = _import_archive(key, archive, create=True)
    return jsonify({"projectKey": key, "bundleId": meta["bundleId"], "messages": [], "success": True})


@api.post("/projects/<key>/bundles/imported/actions/importFromStream")
def import_from_stream(key: str) -> Any:
    """POST /projects/{key}/bundles/imported/actions/importFromStream."""
    _require_role("automation", "Importing a bundle")
    check_id(key, "project key")
    if not _store().project_exists(key):
        raise not_found(f"Project '{key}'", code="ERR_PROJECT_NOT_FOUND")
    meta = _import_archive(key, _uploaded_archive(), create=False)
    return jsonify({"projectKey": key, "bundleId": meta["bundleId"]})


@api.get("/projects/<key>/bundles/imported")
def list_imported(key: str) -> Any:
    """GET /projects/{key}/bundles/imported."""
    _require_role("automation", "Listing imported bundles")
    store = _store()
    store.auto_project(key)
    return jsonify({"bundles": store.imported_bundles(key)})


def _imported_meta(key: str, bundle_id: str) -> dict[str, Any]:
    store = _store()
    store.auto_project(key)
    meta = read_json(store.imported_dir(key, bundle_id) / "meta.json")
    if not meta:
        raise not_found(f"Imported bundle '{bundle_id}' of project '{key}'", code="ERR_BUNDLE_NOT_FOUND")
    return dict(meta)


@api.post("/projects/<key>/bundles/imported/<bundle_id>/actions/preload")
def preload(key: str, bundle_id: str) -> Any:
    """POST /projects/{key}/bundles/imported/{id}/actions/preload."""
    _require_role("automation", "Preloading a bundle")
    _imported_meta(key, bundle_id)
    return jsonify({"anyMessage": False, "success": True, "messages": [], "bundleId": bundle_id})


@api.post("/projects/<key>/bundles/imported/<bundle_id>/actions/activate")
def activate(key: str, bundle_id: str) -> Any:
    """POST /projects/{key}/bundles/imported/{id}/actions/activate: check connections, switch, report."""
    _require_role("automation", "Activating a bundle")
    store = _store()
    meta = _imported_meta(key, bundle_id)
    body = _json_body()
    if not isinstance(body, dict):
        raise bad_request("Activation options must be a JSON object", code="ERR_INVALID_JSON")
    unknown = sorted(set(body) - ACTIVATE_FIELDS)
    if unknown:
        raise bad_request(
            f"Unknown activation option(s) {', '.join(unknown)}: the body may only hold "
            "scenariosActiveOnActivation (connection remappings belong in the project's activation "
            "settings, PUT /projects/{key}/settings)",
            code="ERR_INVALID_ACTIVATION_OPTIONS",
        )
    scenarios_on = body.get("scenariosActiveOnActivation") or {}
    if not isinstance(scenarios_on, dict):
        raise bad_request("scenariosActiveOnActivation must be an object")
    remaps = store.connection_remappings(key)
    available = store.connections()
    missing = [
        (c, str(remaps.get(c, c)))
        for c in meta.get("requiredConnections", [])
        if remaps.get(c, c) not in available
    ]
    if missing:
        source, target = missing[0]
        via = f" (remapped from '{source}')" if source != target else ""
        raise SimError(
            400,
            f"Connection '{target}'{via} does not exist on this node: create it or remap "
            f"'{source}' in the project's activation settings",
            code="ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION",
        )
    content = store.imported_dir(key, bundle_id) / "content"
    bundle_vars = read_json(content / "variables.json", {}) or {}
    with store.lock:
        project = store.auto_project(key)
        previous = project.get("activeBundleId")
        project["activeBundleId"] = bundle_id
        project["activatedOn"] = now_ms()
        local = (project.get("variables") or {}).get("local") or {}
        project["variables"] = {"standard": dict(bundle_vars.get("standard") or {}), "local": local}
        states = dict(project.get("scenarioActive") or {})
        project["scenarioActive"] = states
        store.save_auto_project(key, project)
        for sid, definition in store.scenario_defs(key).items():
            if sid in scenarios_on:
                states[sid] = bool(scenarios_on[sid])
            elif sid not in states:
                states[sid] = bool(definition.get("active", False))
        project["scenarioActive"] = states
        store.save_auto_project(key, project)
    messages = [
        {
            "severity": "INFO",
            "isFatal": False,
            "code": "INFO_BUNDLE_CONNECTION_REMAPPED",
            "title": "Connection remapped",
            "message": f"Connection '{source}' of the bundle is remapped to '{target}'",
        }
        for source, target in sorted(remaps.items())
        if source in meta.get("requiredConnections", [])
    ]
    extra = store.node_config().get("activationMessages") or []  # test knob: extra report entries
    messages += [dict(m) for m in extra if isinstance(m, dict)]
    severities = {str(m.get("severity", "INFO")).upper() for m in messages}
    return jsonify(
        {
            "anyMessage": bool(messages),
            "success": True,
            "warning": "WARNING" in severities,
            "error": "ERROR" in severities,
            "fatal": any(bool(m.get("isFatal")) for m in messages),
            "messages": messages,
            "bundleId": bundle_id,
            "previousBundleId": previous,
        }
    )


@api.delete("/projects/<key>/bundles/imported/<bundle_id>")
def delete_imported(key: str, bundle_id: str) -> Any:
    """DELETE /projects/{key}/bundles/imported/{id} (not the active one)."""
    _require_role("automation", "Deleting an imported bundle")
    store = _store()
    _imported_meta(key, bundle_id)
    with store.lock:
        if store.auto_project(key).get("activeBundleId") == bundle_id:
            raise bad_request(
                f"Bundle '{bundle_id}' is the active bundle of '{key}': activate another one first",
                code="ERR_BUNDLE_IS_ACTIVE",
            )
        bundles.remove_tree(store.imported_dir(key, bundle_id))
    return jsonify({"deleted": bundle_id})


# -- scenarios -------------------------------------------------------------------------------------


@api.get("/projects/<key>/scenarios/")
def list_scenarios(key: str) -> Any:
    """GET /projects/{key}/scenarios/."""
    store = _store()
    runner = _runner()
    return jsonify([runner.list_item(key, d) for d in store.scenario_defs(key).values()])


@api.get("/projects/<key>/scenarios/<sid>/")
def get_scenario(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}: definition and status."""
    definition = _store().scenario_def(key, sid)
    item = _runner().list_item(key, definition)
    return jsonify({**definition, **item})


@api.get("/projects/<key>/scenarios/<sid>/light")
def scenario_light(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/light: status."""
    definition = _store().scenario_def(key, sid)
    item = _runner().list_item(key, definition)
    keys = ("id", "name", "projectKey", "active", "running", "start", "nextRun", "markedAsTest")
    return jsonify({k: item[k] for k in keys})


@api.post("/projects/<key>/scenarios/<sid>/run")
def run_scenario(key: str, sid: str) -> Any:
    """POST /projects/{key}/scenarios/{id}/run: fire the manual trigger."""
    definition = _store().scenario_def(key, sid)
    params = parse_params(request.get_data(cache=False))
    return jsonify(_runner().fire(key, sid, definition, params))


@api.post("/projects/<key>/scenarios/<sid>/abort")
def abort_scenario(key: str, sid: str) -> Any:
    """POST /projects/{key}/scenarios/{id}/abort."""
    _store().scenario_def(key, sid)
    return jsonify(_runner().abort(key, sid))


@api.get("/projects/<key>/scenarios/trigger/<sid>/<trigger_id>")
def trigger_fire(key: str, sid: str, trigger_id: str) -> Any:
    """GET /projects/{key}/scenarios/trigger/{id}/{triggerId}?triggerRunId=."""
    _store().scenario_def(key, sid)
    return jsonify(_runner().trigger_fire(key, sid, trigger_id, request.args.get("triggerRunId", "")))


@api.get("/projects/<key>/scenarios/<sid>/get-run-for-trigger")
def run_for_trigger(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/get-run-for-trigger."""
    _store().scenario_def(key, sid)
    args = request.args
    return jsonify(
        _runner().run_for_trigger(key, sid, args.get("triggerId", ""), args.get("triggerRunId", ""))
    )


@api.get("/projects/<key>/scenarios/<sid>/get-last-runs")
def last_runs(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/get-last-runs, newest first."""
    _store().scenario_def(key, sid)
    try:
        limit = int(request.args.get("limit", "10"))
    except ValueError:
        raise bad_request("limit must be an integer") from None
    return jsonify(_runner().last_runs(key, sid, limit, _bool_arg("onlyFinishedRuns", False)))


@api.get("/projects/<key>/scenarios/<sid>/<run_id>/")
def run_details(key: str, sid: str, run_id: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/{runId}/: scenarioRun and stepRuns."""
    check_id(key, "project key")
    return jsonify(_runner().run_details(key, sid, run_id))


@api.get("/projects/<key>/scenarios/<sid>/<run_id>/log")
def run_log(key: str, sid: str, run_id: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/{runId}/log[?stepId=]: text."""
    text = _runner().run_log(key, sid, run_id, request.args.get("stepId") or None)
    return Response(text, mimetype="text/plain")


@api.get("/projects/<key>/scenarios/<sid>/<run_id>/scenario-run-report")
def run_report(key: str, sid: str, run_id: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/{runId}/scenario-run-report: JUnit XML."""
    return Response(_runner().junit(key, sid, run_id), mimetype="application/xml")


# -- futures ---------------------------------------------------------------------------------------


@api.get("/futures/")
def list_futures() -> Any:
    """GET /futures/: running futures."""
    store = _store()
    base = store.state_dir / "futures"
    items = [read_json(p) for p in sorted(base.glob("*.json"))] if base.is_dir() else []
    return jsonify([{k: v for k, v in i.items() if k != "result"} for i in items if i and i.get("alive")])


@api.get("/futures/<job_id>")
def get_future(job_id: str) -> Any:
    """GET /futures/{jobId}[?peek=]."""
    state = _store().get_future(job_id)
    if _bool_arg("peek", False):
        state.pop("result", None)
    return jsonify(state)


@api.delete("/futures/<job_id>")
def abort_future(job_id: str) -> Any:
    """DELETE /futures/{jobId}."""
    store = _store()
    state = store.get_future(job_id)
    if state.get("alive"):
        state["alive"] = False
        state["aborted"] = True
        store.save_future(state)
    return Response(status=204)


# -- test control ----------------------------------------------------------------------------------

control = Blueprint("control", __name__, url_prefix="/__sim__")


@control.before_request
def _loopback_or_key() -> Response | None:
    """Test control needs no key from loopback; from anywhere else it needs the API key."""
    if request.remote_addr in ("127.0.0.1", "::1"):
        return None
    return _authenticate()


def _faults() -> FaultState:
    faults: FaultState = current_app.config["SIM_FAULTS"]
    return faults


@control.get("/health")
def health() -> Any:
    """GET /__sim__/health."""
    store = _store()
    return jsonify({"status": "ok", "role": store.role, "nodeName": store.node_name})


@control.get("/faults")
def get_faults() -> Any:
    """GET /__sim__/faults: the current plan."""
    return jsonify(_faults().describe())


@control.put("/faults")
def put_faults() -> Any:
    """PUT /__sim__/faults: install a plan."""
    try:
        _faults().set_plan(_json_body(allow_empty=False))
    except FaultPlanError as exc:
        raise bad_request(f"Invalid fault plan: {exc}", code="ERR_SIM_INVALID_FAULTS") from None
    return jsonify(_faults().describe())


@control.delete("/faults")
def delete_faults() -> Any:
    """DELETE /__sim__/faults: remove every rule."""
    _faults().clear()
    return jsonify(_faults().describe())


@control.get("/stats")
def get_stats() -> Any:
    """GET /__sim__/stats: request counts."""
    return jsonify(_faults().stats())


@control.delete("/stats")
def delete_stats() -> Any:
    """DELETE /__sim__/stats: zero the counts."""
    _faults().reset_stats()
    return jsonify(_faults().stats())


# -- application -----------------------------------------------------------------------------------


def _cleanup_uploads(exc: BaseException | None) -> None:
    for name in g.pop("sim_uploads", []):
        with contextlib.suppress(OSError):
            Path(name).unlink()


def create_app(
    store: Store, runner: ScenarioRunner, api_key: str, faults: FaultState | None = None
) -> Flask:
    """Build the Flask app of one node (fault middleware and stats included)."""
    app = Flask("mlcd.sim")
    app.request_class = SimRequest
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(
        SIM_STORE=store,
        SIM_RUNNER=runner,
        SIM_API_KEY=api_key,
        SIM_FAULTS=faults or FaultState(),
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
    )
    for prefix in API_PREFIXES:
        app.register_blueprint(api, url_prefix=prefix, name="api" + prefix.replace("/", "_"))
    app.register_blueprint(control)
    app.teardown_request(_cleanup_uploads)

    @app.errorhandler(SimError)
    def _sim_error(exc: SimError) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 404:
            err = SimError(
                404, f"No such API endpoint: {request.method} {request.path}", code="ERR_NOT_FOUND"
            )
        elif status == 405:
            err = SimError(405, f"Method {request.method} not allowed on {request.path}", code="ERR_METHOD")
        elif isinstance(exc, ClientDisconnected):
            err = SimError(
                400,
                "Request body truncated: the client sent less than its Content-Length",
                code="ERR_UPLOAD_TRUNCATED",
            )
        elif status == 413:
            err = SimError(413, "Request too large", code="ERR_REQUEST_TOO_LARGE")
        else:
            err = SimError(status, f"Bad request: {exc.description}", code="ERR_BAD_REQUEST")
        return err.response()

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> Response:
        if isinstance(exc, ConnectionError):
            raise exc
        print(
            "mlcd sim: internal error: " + "".join(traceback.format_exception_only(type(exc), exc)).strip(),
            file=sys.stderr,
            flush=True,
        )
        return SimError(
            500, f"Internal error in the stand-in: {type(exc).__name__}", code="ERR_INTERNAL"
        ).response()

    app.wsgi_app = FaultMiddleware(app.wsgi_app, app.url_map, app.config["SIM_FAULTS"])  # type: ignore[method-assign]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return app
