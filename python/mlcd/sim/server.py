"""The stand-in's Flask application: parses DSS public API requests and writes the answers.

What a request does is decided by :class:`~mlcd.sim.backend.NodeBackend`
(projects, bundles, activation) and :class:`~mlcd.sim.scenarios.ScenarioRunner`;
this module only authenticates, parses and serialises. The API blueprint is
mounted twice, under ``/public/api`` (the documented base) and ``/dip/publicapi``
(where dataikuapi sends requests). Test-control routes (``/__sim__/``) exist only
when the app is built with ``test_control=True`` and always need the node's key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, Flask, Request, current_app, g, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from mlcd.sim import bundles, datasets, evaluations, savedmodels
from mlcd.sim.auth import is_authorised
from mlcd.sim.backend import NodeBackend
from mlcd.sim.dialects import with_stack_trace
from mlcd.sim.errors import NOT_AUTHENTICATED, SimError, bad_request, error_response
from mlcd.sim.faults import FaultMiddleware, FaultPlanError, FaultState
from mlcd.sim.scenarios import ScenarioRunner, parse_params
from mlcd.sim.store import Store, read_json

API_PREFIXES = ("/public/api", "/dip/publicapi")
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


def _backend() -> NodeBackend:
    backend: NodeBackend = current_app.config["SIM_BACKEND"]
    return backend


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


def _key_refused() -> Response | None:
    key: str = current_app.config["SIM_API_KEY"]
    if is_authorised(request.headers.get("Authorization"), key):
        return None
    return error_response(
        401,
        {
            "errorType": NOT_AUTHENTICATED,
            "message": "Unknown API Key",
            "detailedMessage": "Unknown API Key (use HTTP Basic with the key as user name, "
            "or Authorization: Bearer)",
        },
    )


@api.before_request
def _authenticate() -> Response | None:
    return _key_refused()


def _scenario(key: str, sid: str) -> dict[str, Any]:
    """The definition of scenario ``sid`` (the project must exist: dialect's error otherwise)."""
    _backend().require_project(key)
    return _store().scenario_def(key, sid)


@api.get("/instance-info")
def instance_info() -> Any:
    """GET /instance-info: node id, name and type."""
    return jsonify(_backend().instance_info())


@api.get("/auth/info")
def auth_info() -> Any:
    """GET /auth/info: who the API key is."""
    return jsonify(_backend().auth_info())


@api.get("/admin/connections/")
def list_connections() -> Any:
    """GET /admin/connections/ (admin key only): connection name -> description, from node.json."""
    return jsonify(_backend().list_connections())


@api.get("/projects/")
def list_projects() -> Any:
    """GET /projects/: project summaries (with activeBundleState on automation)."""
    return jsonify(_backend().list_projects())


@api.get("/projects/<key>/")
def get_project(key: str) -> Any:
    """GET /projects/{key}: one project summary."""
    return jsonify(_backend().project_summary(key))


@api.delete("/projects/<key>/")
def delete_project(key: str) -> Any:
    """DELETE /projects/{key}: delete now, answer a finished future."""
    return jsonify(_backend().delete_project(key))


@api.get("/projects/<key>/variables/")
def get_variables(key: str) -> Any:
    """GET /projects/{key}/variables/."""
    return jsonify(_backend().get_variables(key))


@api.put("/projects/<key>/variables/")
def set_variables(key: str) -> Any:
    """PUT /projects/{key}/variables/ (both standard and local)."""
    _backend().set_variables(key, _json_body(allow_empty=False))
    return Response(status=204)


@api.get("/projects/<key>/settings")
def get_settings(key: str) -> Any:
    """GET /projects/{key}/settings: the whole settings object."""
    return jsonify(_backend().get_settings(key))


@api.put("/projects/<key>/settings")
def set_settings(key: str) -> Any:
    """PUT /projects/{key}/settings: replace the settings (connection remappings checked)."""
    _backend().set_settings(key, _json_body(allow_empty=False))
    return Response(status=204)


# -- exported bundles (design) ---------------------------------------------------------------------


@api.put("/projects/<key>/bundles/exported/<bundle_id>")
def export_bundle(key: str, bundle_id: str) -> Any:
    """PUT /projects/{key}/bundles/exported/{id}: export a bundle (409 if the id exists)."""
    return jsonify(_backend().export_bundle(key, bundle_id, request.args.get("releaseNotes")))


@api.get("/projects/<key>/bundles/exported")
def list_exported(key: str) -> Any:
    """GET /projects/{key}/bundles/exported."""
    return jsonify({"bundles": _backend().list_exported(key)})


@api.get("/projects/<key>/bundles/exported/<bundle_id>/archive")
def download_exported(key: str, bundle_id: str) -> Any:
    """GET /projects/{key}/bundles/exported/{id}/archive: the zip, streamed from disk."""
    backend = _backend()
    backend.require_role("design", "Downloading a bundle")
    path = backend.exported_zip(key, bundle_id)
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
    return jsonify(_backend().delete_exported(key, bundle_id))


# -- imported bundles (automation) -----------------------------------------------------------------


@api.post("/projectsFromBundle/")
def project_from_bundle() -> Any:
    """POST /projectsFromBundle/: create a project from an uploaded bundle (not activated)."""
    _backend().require_role("automation", "Creating a project from a bundle")
    return jsonify(_backend().project_from_bundle(_uploaded_archive()))


@api.post("/projects/<key>/bundles/imported/actions/importFromStream")
def import_from_stream(key: str) -> Any:
    """POST /projects/{key}/bundles/imported/actions/importFromStream."""
    backend = _backend()
    backend.require_role("automation", "Importing a bundle")
    backend.require_project(key)
    return jsonify(backend.import_bundle(key, _uploaded_archive()))


@api.get("/projects/<key>/bundles/imported")
def list_imported(key: str) -> Any:
    """GET /projects/{key}/bundles/imported."""
    return jsonify({"bundles": _backend().list_imported(key)})


@api.post("/projects/<key>/bundles/imported/<bundle_id>/actions/preload")
def preload(key: str, bundle_id: str) -> Any:
    """POST /projects/{key}/bundles/imported/{id}/actions/preload."""
    return jsonify(_backend().preload(key, bundle_id))


@api.post("/projects/<key>/bundles/imported/<bundle_id>/actions/activate")
def activate(key: str, bundle_id: str) -> Any:
    """POST /projects/{key}/bundles/imported/{id}/actions/activate: the activation report."""
    return jsonify(_backend().activate(key, bundle_id, _json_body()))


@api.delete("/projects/<key>/bundles/imported/<bundle_id>")
def delete_imported(key: str, bundle_id: str) -> Any:
    """DELETE /projects/{key}/bundles/imported/{id} (not the active one)."""
    return jsonify(_backend().delete_imported(key, bundle_id))


# -- scenarios -------------------------------------------------------------------------------------


@api.get("/projects/<key>/scenarios/")
def list_scenarios(key: str) -> Any:
    """GET /projects/{key}/scenarios/."""
    _backend().require_project(key)
    store = _store()
    runner = _runner()
    return jsonify([runner.list_item(key, d) for d in store.scenario_defs(key).values()])


@api.get("/projects/<key>/scenarios/<sid>/")
def get_scenario(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}: definition and status."""
    definition = _scenario(key, sid)
    item = _runner().list_item(key, definition)
    return jsonify({**definition, **item})


@api.get("/projects/<key>/scenarios/<sid>/light")
def scenario_light(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/light: status."""
    definition = _scenario(key, sid)
    item = _runner().list_item(key, definition)
    keys = ("id", "name", "projectKey", "active", "running", "start", "nextRun", "markedAsTest")
    return jsonify({k: item[k] for k in keys})


@api.post("/projects/<key>/scenarios/<sid>/run")
def run_scenario(key: str, sid: str) -> Any:
    """POST /projects/{key}/scenarios/{id}/run: fire the manual trigger."""
    definition = _scenario(key, sid)
    params = parse_params(request.get_data(cache=False))
    return jsonify(_runner().fire(key, sid, definition, params))


@api.post("/projects/<key>/scenarios/<sid>/abort")
def abort_scenario(key: str, sid: str) -> Any:
    """POST /projects/{key}/scenarios/{id}/abort."""
    _scenario(key, sid)
    return jsonify(_runner().abort(key, sid))


@api.get("/projects/<key>/scenarios/trigger/<sid>/<trigger_id>")
def trigger_fire(key: str, sid: str, trigger_id: str) -> Any:
    """GET /projects/{key}/scenarios/trigger/{id}/{triggerId}?triggerRunId=."""
    _scenario(key, sid)
    return jsonify(_runner().trigger_fire(key, sid, trigger_id, request.args.get("triggerRunId", "")))


@api.get("/projects/<key>/scenarios/<sid>/get-run-for-trigger")
def run_for_trigger(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/get-run-for-trigger."""
    _scenario(key, sid)
    args = request.args
    return jsonify(
        _runner().run_for_trigger(key, sid, args.get("triggerId", ""), args.get("triggerRunId", ""))
    )


@api.get("/projects/<key>/scenarios/<sid>/get-last-runs")
def last_runs(key: str, sid: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/get-last-runs, newest first."""
    _scenario(key, sid)
    try:
        limit = int(request.args.get("limit", "10"))
    except ValueError:
        raise bad_request("limit must be an integer") from None
    return jsonify(_runner().last_runs(key, sid, limit, _bool_arg("onlyFinishedRuns", False)))


@api.get("/projects/<key>/scenarios/<sid>/<run_id>/")
def run_details(key: str, sid: str, run_id: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/{runId}/: scenarioRun and stepRuns."""
    _backend().require_project(key)
    return jsonify(_runner().run_details(key, sid, run_id))


@api.get("/projects/<key>/scenarios/<sid>/<run_id>/log")
def run_log(key: str, sid: str, run_id: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/{runId}/log[?stepId=]: text."""
    _backend().require_project(key)
    text = _runner().run_log(key, sid, run_id, request.args.get("stepId") or None)
    return Response(text, mimetype="text/plain")


@api.get("/projects/<key>/scenarios/<sid>/<run_id>/scenario-run-report")
def run_report(key: str, sid: str, run_id: str) -> Any:
    """GET /projects/{key}/scenarios/{id}/{runId}/scenario-run-report: JUnit XML."""
    _backend().require_project(key)
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
def _control_key() -> Response | None:
    """Test control needs the node's API key, from loopback too."""
    return _key_refused()


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


for _routes in (savedmodels, datasets, evaluations):
    _routes.register(api, control)

# -- application -----------------------------------------------------------------------------------


def _cleanup_uploads(exc: BaseException | None) -> None:
    for name in g.pop("sim_uploads", []):
        with contextlib.suppress(OSError):
            Path(name).unlink()


def create_app(
    store: Store,
    runner: ScenarioRunner,
    api_key: str,
    faults: FaultState | None = None,
    test_control: bool = False,
) -> Flask:
    """Build the Flask app of one node (fault middleware and stats; ``/__sim__/`` if ``test_control``)."""
    app = Flask("mlcd.sim")
    app.request_class = SimRequest
    app.url_map.strict_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(
        SIM_STORE=store,
        SIM_BACKEND=NodeBackend(store),
        SIM_RUNNER=runner,
        SIM_API_KEY=api_key,
        SIM_FAULTS=faults or FaultState(),
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
    )
    for prefix in API_PREFIXES:
        app.register_blueprint(api, url_prefix=prefix, name="api" + prefix.replace("/", "_"))
    if store.role == "deployer":
        from mlcd.sim.deployer_routes import register

        register(app, API_PREFIXES)
    if test_control:
        app.register_blueprint(control)
    app.teardown_request(_cleanup_uploads)

    @app.errorhandler(SimError)
    def _sim_error(exc: SimError) -> Response:
        if _backend().dialect.error_bodies == "stacktrace":
            exc.detailed_message = with_stack_trace(exc.error_type, exc.detailed_message)
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
