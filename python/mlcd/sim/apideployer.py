"""The API Deployer stand-in, with the design node's API-service routes it is published from.

Data dir: ``apiservices/<PROJECT>/<service>.json`` (the design-node service: ``endpoints``
``{id: {"model": {...}}}`` and ``behaviour`` knobs, read when a version is packaged, so a
version keeps what the service was then) and ``infras.json`` (``{infra id: {"stage",
"type": "STATIC", "apiNodes": [{"url", "adminAPIKey"}]}}``). State is in memory.

Confirmed (dataikuapi 15.2 ``dss/apiservice.py``, ``dss/apideployer.py``, ``dss/future.py``):
package, publish, ``/api-deployer/services/{svc}``, ``/infras/{id}``, deployment create,
settings GET/PUT with ``generationsMapping``, ``actions/update`` answering a future
``{jobId}``, ``/futures/{id}``, light and heavy status (``deploymentBasicInfo``, ``health``,
``healthMessages.messages``, ``apiNodes[].url``). Inferred: the status shapes' other fields,
that an update which reached every API node is HEALTHY, and how it reaches them (see
:mod:`mlcd.sim.apinode`). ``update_delay_s`` in a version's behaviour slows its update.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import requests
from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.wrappers import Response

from mlcd.sim.apinode import json_object_body
from mlcd.sim.errors import SimError, not_found


class DeployerState:
    """Packages, published services, deployments and update futures of one stand-in node."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.lock = threading.Lock()
        self.packages: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.published: dict[str, dict[str, dict[str, Any]]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.futures: dict[str, dict[str, Any]] = {}

    def infras(self) -> dict[str, Any]:
        """``infras.json`` of the data dir ({} when absent)."""
        path = self.data_dir / "infras.json"
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}

    def design_service(self, project: str, service: str) -> dict[str, Any]:
        """The design-node service definition (404 when absent)."""
        path = self.data_dir / "apiservices" / project / f"{service}.json"
        if not path.exists():
            raise not_found(f"API service {service} in project {project}")
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def deployment(self, dep_id: str) -> dict[str, Any]:
        """A deployment (404 when absent); call with the lock held."""
        dep = self.deployments.get(dep_id)
        if dep is None:
            raise not_found(f"Deployment {dep_id}")
        return dep


api = Blueprint("apideployer", __name__)


def _st() -> DeployerState:
    state: DeployerState = current_app.config["DEPLOYER_STATE"]
    return state


@api.get("/instance-info")
def instance_info() -> Response:
    """A design node that runs its own (local) API Deployer."""
    return jsonify({"nodeId": "sim-apideployer", "nodeName": "apideployer", "nodeType": "DESIGN"})


@api.get("/projects/<project>/apiservices/<service>/packages")
def list_packages(project: str, service: str) -> Response:
    """Versions packaged on the design node."""
    st = _st()
    st.design_service(project, service)
    with st.lock:
        pkgs = st.packages.get((project, service), {})
        return jsonify([{"id": v, "createdOn": p["createdOn"]} for v, p in pkgs.items()])


@api.get("/projects/<project>/apiservices/<service>/settings")
def service_settings(project: str, service: str) -> Response:
    """The design-node service's settings: its endpoints (``id``, ``type``)."""
    definition = _st().design_service(project, service)
    endpoints = [{"id": e, "type": "STD_PREDICTION"} for e in definition.get("endpoints") or {}]
    return jsonify({"id": service, "projectKey": project, "endpoints": endpoints})


@api.post("/projects/<project>/apiservices/<service>/packages/<version>")
def create_package(project: str, service: str, version: str) -> Response:
    """Snapshot the service (endpoints, models, behaviour) as a version; 409 when the id is taken."""
    st = _st()
    definition = st.design_service(project, service)
    with st.lock:
        pkgs = st.packages.setdefault((project, service), {})
        if version in pkgs:
            raise SimError(409, f"Version {version} of API service {service} already exists")
        pkgs[version] = dict(
            definition, createdOn=int(time.time() * 1000), releaseNotes=request.args.get("releaseNotes")
        )
    return Response(status=204)


@api.post("/projects/<project>/apiservices/<service>/packages/<version>/publish")
def publish_package(project: str, service: str, version: str) -> Response:
    """Publish a version to the deployer under ``publishedServiceId`` (default: the service id)."""
    st = _st()
    target = request.args.get("publishedServiceId") or service
    with st.lock:
        pkg = st.packages.get((project, service), {}).get(version)
        if pkg is None:
            raise not_found(f"Version {version} of API service {service}")
        st.published.setdefault(target, {})[version] = pkg
    return Response(status=204)


@api.get("/api-deployer/services/<service>")
def published_service(service: str) -> Response:
    """Light status of a published service: its versions and deployments."""
    st = _st()
    with st.lock:
        if service not in st.published:
            raise not_found(f"Published service {service}")
        deps = [
            {"id": d, "infraId": x["settings"]["infraId"]}
            for d, x in st.deployments.items()
            if x["settings"]["publishedServiceId"] == service
        ]
        return jsonify(
            {
                "serviceBasicInfo": {"id": service},
                "packages": [
                    {"id": v, "publishedOn": p["createdOn"]} for v, p in st.published[service].items()
                ],
                "deployments": deps,
            }
        )


@api.get("/api-deployer/infras/<infra_id>")
def infra(infra_id: str) -> Response:
    """Light status of an infrastructure (never its admin keys)."""
    st = _st()
    found = st.infras().get(infra_id)
    if found is None:
        raise not_found(f"Infrastructure {infra_id}")
    with st.lock:
        deps = [{"id": d} for d, x in st.deployments.items() if x["settings"]["infraId"] == infra_id]
    return jsonify(
        {
            "infraBasicInfo": {
                "id": infra_id,
                "stage": found.get("stage"),
                "type": found.get("type", "STATIC"),
            },
            "deployments": deps,
        }
    )


@api.post("/api-deployer/deployments")
def create_deployment() -> Response:
    """Create a deployment (not started: an update does that)."""
    body = json_object_body()
    dep_id, svc = str(body.get("deploymentId") or ""), str(body.get("publishedServiceId") or "")
    infra_id, version = str(body.get("infraId") or ""), str(body.get("version") or "")
    st = _st()
    if infra_id not in st.infras():
        raise not_found(f"Infrastructure {infra_id}")
    with st.lock:
        if version not in st.published.get(svc, {}):
            raise not_found(f"Version {version} of published service {svc}")
        if dep_id in st.deployments:
            raise SimError(409, f"Deployment {dep_id} already exists")
        st.deployments[dep_id] = {
            "settings": {
                "id": dep_id,
                "publishedServiceId": svc,
                "infraId": infra_id,
                "enabled": True,
                "generationsMapping": {"mode": "SINGLE_GENERATION", "generation": version},
            },
            "deployed": None,
            "health": "OUT_OF_SYNC",
            "messages": [],
        }
    return jsonify(st.deployments[dep_id]["settings"])  # dataikuapi reads a JSON answer (its shape: inferred)


@api.get("/api-deployer/deployments/<dep_id>/settings")
def get_settings(dep_id: str) -> Response:
    """The deployment's settings."""
    st = _st()
    with st.lock:
        return jsonify(st.deployment(dep_id)["settings"])


@api.put("/api-deployer/deployments/<dep_id>/settings")
def put_settings(dep_id: str) -> Response:
    """Replace the settings (the id, service and infrastructure cannot change)."""
    body = json_object_body()
    st = _st()
    with st.lock:
        dep = st.deployment(dep_id)
        for key in ("id", "publishedServiceId", "infraId"):
            body[key] = dep["settings"][key]
        dep["settings"] = body
        if dep["deployed"] != body.get("generationsMapping"):
            dep["health"] = "OUT_OF_SYNC"
    return Response(status=204)


@api.post("/api-deployer/deployments/<dep_id>/actions/update")
def start_update(dep_id: str) -> Response:
    """Start pushing the settings to every API node of the infrastructure: a future."""
    st = _st()
    with st.lock:
        dep = st.deployment(dep_id)
        settings = json.loads(json.dumps(dep["settings"]))
        job = secrets.token_hex(8)
        st.futures[job] = {"hasResult": False, "alive": True, "result": None}
    infra_def = st.infras().get(settings["infraId"]) or {}
    threading.Thread(target=_update, args=(st, dep_id, settings, infra_def, job), daemon=True).start()
    return jsonify({"jobId": job, "hasResult": False, "alive": True})


def _update(
    st: DeployerState, dep_id: str, settings: dict[str, Any], infra_def: dict[str, Any], job: str
) -> None:
    mapping = settings.get("generationsMapping") or {}
    gen = str(mapping.get("generation") or "")
    svc = settings["publishedServiceId"]
    with st.lock:
        package = st.published.get(svc, {}).get(gen)
    messages: list[dict[str, Any]] = []
    if package is None:
        messages.append(_message("ERROR", "Unknown version", f"version {gen} is not published"))
    else:
        time.sleep(float((package.get("behaviour") or {}).get("update_delay_s") or 0))
        for node in infra_def.get("apiNodes") or []:
            problem = _push(node, svc, gen, package)
            if problem:
                messages.append(_message("ERROR", f"API node {node.get('url')}", problem))
    health = "ERROR" if messages else "HEALTHY"
    if not messages:
        messages.append(_message("SUCCESS", "Deployed", f"version {gen} answers on every API node"))
    with st.lock:
        dep = st.deployments[dep_id]
        dep.update(
            deployed=mapping if health == "HEALTHY" else dep["deployed"], health=health, messages=messages
        )
        st.futures[job] = {
            "hasResult": True,
            "alive": False,
            "result": {"health": health, "messages": messages},
        }


def _message(severity: str, title: str, text: str) -> dict[str, Any]:
    return {
        "severity": severity,
        "isFatal": severity == "ERROR",
        "code": None,
        "title": title,
        "message": text,
        "details": "",
    }


def _push(node: dict[str, Any], svc: str, gen: str, package: dict[str, Any]) -> str | None:
    """Create the service, add the generation and switch to it on one API node; a problem or None."""
    base = str(node.get("url") or "").rstrip("/") + "/admin/api/services"
    auth = (str(node.get("adminAPIKey") or ""), "")
    try:
        r = requests.post(f"{base}/", json={"serviceId": svc}, auth=auth, timeout=10)
        if r.status_code not in (200, 204, 409):
            return f"create service: HTTP {r.status_code}"
        r = requests.post(f"{base}/{svc}/generations/{gen}", json=package, auth=auth, timeout=10)
        if r.status_code >= 300:
            return f"add generation: HTTP {r.status_code}"
        r = requests.post(f"{base}/{svc}/actions/switchTo/{gen}", auth=auth, timeout=10)
        if r.status_code >= 300:
            return f"switch: HTTP {r.status_code}"
    except requests.RequestException as exc:
        return f"unreachable ({type(exc).__name__})"
    return None


@api.get("/api-deployer/deployments/<dep_id>")
def light_status(dep_id: str) -> Response:
    """Light status: ``deploymentBasicInfo``."""
    st = _st()
    with st.lock:
        s = st.deployment(dep_id)["settings"]
        return jsonify(
            {
                "deploymentBasicInfo": {
                    "id": dep_id,
                    "publishedServiceId": s["publishedServiceId"],
                    "infraId": s["infraId"],
                    "enabled": s.get("enabled", True),
                }
            }
        )


@api.get("/api-deployer/deployments/<dep_id>/status")
def heavy_status(dep_id: str) -> Response:
    """Heavy status: health, messages, the API node URLs and the deployed generation."""
    st = _st()
    with st.lock:
        dep = st.deployment(dep_id)
        infra_id = dep["settings"]["infraId"]
        out = {
            "health": dep["health"],
            "healthMessages": {"messages": dep["messages"]},
            "deployedGenerationsMapping": dep["deployed"],
        }
    nodes = (st.infras().get(infra_id) or {}).get("apiNodes") or []
    if current_app.config["DEPLOYER_DIALECT"].get("service_urls") == "publicURL":
        out["publicURL"] = nodes[0].get("url") if nodes else None
    else:
        out["apiNodes"] = [{"url": n.get("url")} for n in nodes]
    return jsonify(out)


@api.get("/futures/<job>")
def get_future(job: str) -> Response:
    """A future's state."""
    st = _st()
    with st.lock:
        fut = st.futures.get(job)
        if fut is None:
            raise not_found(f"Future {job}")
        return jsonify(dict(fut, jobId=job))


@api.delete("/futures/<job>")
def abort_future(job: str) -> Response:
    """Aborting is accepted; the stand-in's update still finishes (inferred)."""
    st = _st()
    with st.lock:
        if job not in st.futures:
            raise not_found(f"Future {job}")
    return Response(status=204)


def create_apideployer_app(data_dir: Path, api_key: str, dialect: dict[str, str] | None = None) -> Flask:
    """The API Deployer stand-in's app, under ``/public/api/`` and ``/dip/publicapi/``."""
    from mlcd.sim.apinode import install_errors

    app = Flask("mlcd.sim.apideployer")
    app.url_map.strict_slashes = False
    app.config.update(
        DEPLOYER_STATE=DeployerState(Path(data_dir)),
        DEPLOYER_DIALECT=dict(dialect or {}),
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
    )
    for prefix in ("/public/api", "/dip/publicapi"):
        app.register_blueprint(api, url_prefix=prefix, name="apideployer" + prefix.replace("/", "_"))
    install_errors(app, api_key)
    return app
