"""The stand-in Project Deployer's routes (``mlcd sim serve --role deployer``).

Paths, bodies and answers follow dataikuapi's ``DSSProjectDeployer`` and
``DSSProjectDeployerDeployment`` (docs/stand-in.md tags each behaviour). The
futures of updates are served by the node's generic ``/futures/`` routes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from mlcd.sim.bundles import read_manifest
from mlcd.sim.deployer_state import DeployerState
from mlcd.sim.deployer_update import start_update
from mlcd.sim.errors import bad_request

deployer_api = Blueprint("deployer", __name__)
BASE = "/project-deployer"


def _state() -> DeployerState:
    state: DeployerState = current_app.config["SIM_DEPLOYER"]
    return state


@deployer_api.before_request
def _authenticate() -> Response | None:
    from mlcd.sim.server import _key_refused

    return _key_refused()


def _body() -> Any:
    from mlcd.sim.server import _json_body

    return _json_body(allow_empty=False)


@deployer_api.get(f"{BASE}/stages")
def stages() -> Any:
    """GET /project-deployer/stages: the stages the infrastructures use."""
    names = sorted({str(i.get("stage") or "default") for i in _state().infras().values()})
    return jsonify([{"id": n, "desc": n} for n in names])


@deployer_api.get(f"{BASE}/infras")
def list_infras() -> Any:
    """GET /project-deployer/infras: ``[{infraBasicInfo: {id, stage, type}, canDeploy}]``."""
    return jsonify(
        [
            {
                "infraBasicInfo": {"id": k, "stage": v.get("stage", "default"), "type": "AUTOMATION"},
                "canDeploy": v.get("canDeploy", True) is not False,
            }
            for k, v in sorted(_state().infras().items())
        ]
    )


@deployer_api.get(f"{BASE}/infras/<infra_id>")
def infra_status(infra_id: str) -> Any:
    """GET /project-deployer/infras/{id}: light status with its deployments."""
    state = _state()
    infra = state.infra(infra_id)
    deps = [{"id": d["id"]} for d in state.deployments() if d["infraId"] == infra_id]
    return jsonify(
        {"infraBasicInfo": {"id": infra_id, "stage": infra.get("stage", "default")}, "deployments": deps}
    )


@deployer_api.get(f"{BASE}/projects")
def list_projects() -> Any:
    """GET /project-deployer/projects."""
    state = _state()
    return jsonify([state.project_status(k) for k in state.project_keys()])


@deployer_api.get(f"{BASE}/projects/<key>")
def project_status(key: str) -> Any:
    """GET /project-deployer/projects/{key}: packages and deployments."""
    return jsonify(_state().project_status(key))


@deployer_api.post(f"{BASE}/projects/bundles")
def upload_bundle() -> Any:
    """POST /project-deployer/projects/bundles[?projectKey=] (multipart ``file``): publish an archive."""
    from mlcd.sim.server import _uploaded_archive

    archive = _uploaded_archive()
    manifest = read_manifest(archive)
    key = request.args.get("projectKey") or str(manifest["projectKey"])
    if key != manifest["projectKey"]:
        raise bad_request(f"Bundle is of project {manifest['projectKey']}, not {key}")
    _state().publish(key, archive, manifest)
    return Response(status=204)


@deployer_api.get(f"{BASE}/deployments")
def list_deployments() -> Any:
    """GET /project-deployer/deployments: light statuses."""
    return jsonify([_light(d) for d in _state().deployments()])


@deployer_api.post(f"{BASE}/deployments")
def create_deployment() -> Any:
    """POST /project-deployer/deployments: create (not update) a deployment."""
    return jsonify(_light(_state().create(_body())))


def _light(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "deploymentBasicInfo": {
            k: settings[k] for k in ("id", "publishedProjectKey", "infraId", "bundleId", "deployedProjectKey")
        },
        "infraBasicInfo": {"id": settings["infraId"]},
    }


@deployer_api.get(f"{BASE}/deployments/<dep_id>")
def deployment_light(dep_id: str) -> Any:
    """GET /project-deployer/deployments/{id}: light status."""
    return jsonify(_light(_state().settings(dep_id)))


@deployer_api.delete(f"{BASE}/deployments/<dep_id>")
def delete_deployment(dep_id: str) -> Any:
    """DELETE /project-deployer/deployments/{id}."""
    _state().delete(dep_id)
    return Response(status=204)


@deployer_api.get(f"{BASE}/deployments/<dep_id>/status")
def deployment_heavy(dep_id: str) -> Any:
    """GET …/{id}/status: heavy status with ``health`` and ``healthMessages``."""
    return jsonify(_state().health(dep_id))


@deployer_api.get(f"{BASE}/deployments/<dep_id>/governance-status")
def governance_status(dep_id: str) -> Any:
    """GET …/{id}/governance-status?bundleId= (empty: the deployment's bundle): ``messages``."""
    return jsonify(_state().governance(dep_id, request.args.get("bundleId") or ""))


@deployer_api.get(f"{BASE}/deployments/<dep_id>/settings")
def get_settings(dep_id: str) -> Any:
    """GET …/{id}/settings."""
    return jsonify(_state().settings(dep_id))


@deployer_api.put(f"{BASE}/deployments/<dep_id>/settings")
def put_settings(dep_id: str) -> Any:
    """PUT …/{id}/settings (the whole object)."""
    _state().save_settings(dep_id, _body())
    return Response(status=204)


@deployer_api.post(f"{BASE}/deployments/<dep_id>/actions/update")
def update(dep_id: str) -> Any:
    """POST …/{id}/actions/update: a future (``jobId``) of the update."""
    return jsonify(start_update(_state(), dep_id))


def _listed(update: dict[str, Any]) -> dict[str, Any]:
    return {k: update.get(k) for k in ("startTimestamp", "endTimestamp", "type", "status", "requester")}


@deployer_api.get(f"{BASE}/deployments/<dep_id>/update")
def list_updates(dep_id: str) -> Any:
    """GET …/{id}/update: the updates, newest first."""
    state = _state()
    state.settings(dep_id)
    return jsonify([_listed(u) for u in reversed(state.updates(dep_id))])


@deployer_api.get(f"{BASE}/deployments/<dep_id>/last-update")
def last_update(dep_id: str) -> Any:
    """GET …/{id}/last-update: with its log lines."""
    return jsonify(_state().update(dep_id))


@deployer_api.get(f"{BASE}/deployments/<dep_id>/update/<ts>")
def one_update(dep_id: str, ts: str) -> Any:
    """GET …/{id}/update/{startTimestamp}."""
    return jsonify(_state().update(dep_id, ts))


def register(app: Any, prefixes: tuple[str, ...]) -> None:
    """Mount the deployer routes under every API prefix, with its state."""
    from mlcd.sim.store import Store

    store: Store = app.config["SIM_STORE"]
    app.config["SIM_DEPLOYER"] = DeployerState(store)
    for prefix in prefixes:
        app.register_blueprint(deployer_api, url_prefix=prefix, name="deployer" + prefix.replace("/", "_"))
