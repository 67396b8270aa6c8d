"""The API node stand-in: serves the prediction endpoints of the service versions a deployer pushed to it.

Routes (key auth as DSS accepts it, :mod:`mlcd.sim.auth`):

* ``POST /public/api/v1/<service>/<endpoint>/predict`` ``{"features": {...}}`` ->
  ``{"result": {"prediction", "probas", "probaPercentile", "ignored": false}, "timing": {...}}``;
  ``/predict-multi`` ``{"items": [{"features"}]}`` -> ``{"results": [...]}`` (confirmed:
  dataikuapi ``apinode_client.py``; response shape: DSS API node user docs).
* ``/admin/api/services/`` (create), ``.../{svc}/actions/switchTo/{gen}`` (confirmed: dataikuapi
  ``apinode_admin``); ``POST .../{svc}/generations/{gen}`` with the version as JSON (inferred: how
  the real deployer ships a version to a node is not public).

Each version carries its model (a logistic or linear regression, as ``examples/churn``'s
``churn_model.json``) and its behaviour knobs: ``latency_ms``, ``spike_every``/``spike_ms``
(every n-th request is slower), ``error_rate`` (that fraction of requests answers HTTP 500)
and ``degraded`` (the class answered is the wrong one). A missing feature is answered as
DSS answers a record the model ignores (``ignored: true``, ``IGNORED_BY_MODEL``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.wrappers import Response

from mlcd.sim.auth import is_authorised
from mlcd.sim.errors import SimError, bad_request, not_found


class ApiNodeState:
    """Services, their generations and the active one; request counters for spikes and errors."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.services: dict[str, dict[str, Any]] = {}
        self.count = 0
        self.rng = random.Random(7)

    def active(self, service: str) -> dict[str, Any]:
        """The active generation of ``service`` (404 when the service has none)."""
        with self.lock:
            svc = self.services.get(service)
            gen = svc and svc.get("active")
            if not svc or not gen:
                raise not_found(f"Service {service}", code="ERR_SERVICE_NOT_FOUND")
            return dict(svc["generations"][gen], generation=gen)

    def tick(self, behaviour: dict[str, Any]) -> tuple[float, bool]:
        """(seconds to wait, fail this request) for the next request under ``behaviour``."""
        with self.lock:
            self.count += 1
            n = self.count
            fail = self.rng.random() < float(behaviour.get("error_rate") or 0.0)
        delay = float(behaviour.get("latency_ms") or 0) / 1000.0
        every = int(behaviour.get("spike_every") or 0)
        if every and n % every == 0:
            delay += float(behaviour.get("spike_ms") or 0) / 1000.0
        return delay, fail


def _logit_score(model: dict[str, Any], features: dict[str, Any]) -> float | None:
    """The linear score of the model on ``features`` (None when one is missing or not a number)."""
    std = model.get("standardisation") or {}
    means, scales = std.get("means") or [], std.get("scales") or []
    total = float(model.get("intercept") or 0.0)
    for i, name in enumerate(model.get("features") or []):
        value = features.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        mean = float(means[i]) if i < len(means) else 0.0
        scale = float(scales[i]) if i < len(scales) and scales[i] else 1.0
        total += float(model["coefficients"][i]) * (float(value) - mean) / scale
    return total


def predict(model: dict[str, Any], features: Any, degraded: bool) -> dict[str, Any]:
    """DSS's ``result`` object for one record."""
    score = _logit_score(model, features) if isinstance(features, dict) else None
    if score is None:
        return {"ignored": True, "ignoreReason": "IGNORED_BY_MODEL"}
    if model.get("type") == "linear_regression":
        return {"prediction": -score if degraded else score, "ignored": False}
    proba = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, score))))
    label = int(proba >= float(model.get("decision_threshold", 0.5)))
    if degraded:
        label = 1 - label
    return {
        "prediction": str(label),
        "probas": {"0": 1.0 - proba, "1": proba},
        "probaPercentile": int(proba * 100),
        "ignored": False,
    }


api = Blueprint("apinode", __name__)


def _state() -> ApiNodeState:
    state: ApiNodeState = current_app.config["APINODE_STATE"]
    return state


def json_object_body() -> dict[str, Any]:
    """The request body as a JSON object (also used by the API Deployer stand-in)."""
    body = request.get_json(force=True, silent=True)  # dataikuapi sends no JSON content type
    if not isinstance(body, dict):
        raise bad_request("the request body is not a JSON object")
    return body


def _serve(service: str, endpoint: str, records: list[Any]) -> list[dict[str, Any]]:
    gen = _state().active(service)
    ep = (gen.get("endpoints") or {}).get(endpoint)
    if ep is None:
        raise not_found(f"Endpoint {endpoint} of service {service}", code="ERR_ENDPOINT_NOT_FOUND")
    behaviour = gen.get("behaviour") or {}
    delay, fail = _state().tick(behaviour)
    if delay:
        time.sleep(delay)
    if fail:
        raise SimError(500, "the model failed on this request (stand-in error_rate)", code="ERR_PREDICTION")
    degraded = bool(behaviour.get("degraded"))
    out = [
        predict(ep["model"], r.get("features") if isinstance(r, dict) else None, degraded) for r in records
    ]
    if current_app.config["APINODE_DIALECT"].get("labels") == "int":
        for result in out:
            if isinstance(result.get("prediction"), str):
                result["prediction"] = int(result["prediction"])
    return out


@api.post("/public/api/v1/<service>/<endpoint>/predict")
def predict_one(service: str, endpoint: str) -> Response:
    """One record."""
    started = time.perf_counter()
    result = _serve(service, endpoint, [json_object_body()])[0]
    timing = {"wait": 0, "functionInternal": int((time.perf_counter() - started) * 1e6)}
    return jsonify(
        {"result": result, "timing": timing, "apiContext": {"serviceId": service, "endpointId": endpoint}}
    )


@api.post("/public/api/v1/<service>/<endpoint>/predict-multi")
def predict_multi(service: str, endpoint: str) -> Response:
    """Several records."""
    items = json_object_body().get("items")
    if not isinstance(items, list):
        raise bad_request("'items' must be a list of {features: {...}}")
    return jsonify({"results": _serve(service, endpoint, items)})


@api.post("/admin/api/services/")
def create_service() -> Response:
    """Create a service (409 when it exists)."""
    sid = str(json_object_body().get("serviceId") or "")
    if not sid:
        raise bad_request("serviceId is required")
    state = _state()
    with state.lock:
        if sid in state.services:
            raise SimError(409, f"Service {sid} already exists")
        state.services[sid] = {"generations": {}, "active": None}
    return jsonify({})


@api.get("/admin/api/services/<service>/generations")
def list_generations(service: str) -> Response:
    """The service's generations."""
    state = _state()
    with state.lock:
        svc = state.services.get(service)
        if svc is None:
            raise not_found(f"Service {service}")
        return jsonify({"generations": sorted(svc["generations"]), "active": svc["active"]})


@api.post("/admin/api/services/<service>/generations/<gen>")
def add_generation(service: str, gen: str) -> Response:
    """Store a version (the deployer's package JSON) as a generation."""
    package = json_object_body()
    state = _state()
    with state.lock:
        svc = state.services.get(service)
        if svc is None:
            raise not_found(f"Service {service}")
        svc["generations"][gen] = package
    return jsonify({})


@api.post("/admin/api/services/<service>/actions/switchTo/<gen>")
def switch_to(service: str, gen: str) -> Response:
    """Map all traffic to one generation."""
    state = _state()
    with state.lock:
        svc = state.services.get(service)
        if svc is None or gen not in svc["generations"]:
            raise not_found(f"Generation {gen} of service {service}")
        svc["active"] = gen
    return jsonify({})


def create_apinode_app(api_key: str, dialect: dict[str, str] | None = None) -> Flask:
    """The API node stand-in's Flask app; every route needs ``api_key`` (dialects: mlcd.sim.apiroles)."""
    app = Flask("mlcd.sim.apinode")
    app.url_map.strict_slashes = False
    app.config.update(
        APINODE_STATE=ApiNodeState(), APINODE_DIALECT=dict(dialect or {}), MAX_CONTENT_LENGTH=8 * 1024 * 1024
    )
    app.register_blueprint(api)
    install_errors(app, api_key)
    return app


def install_errors(app: Flask, api_key: str) -> None:
    """Key check before every request; DSS-shaped JSON errors (shared by the API Deployer stand-in)."""
    from werkzeug.exceptions import HTTPException

    @app.before_request
    def _auth() -> Response | None:
        if not is_authorised(request.headers.get("Authorization"), api_key):
            return SimError(401, "Unknown API Key", code="ERR_AUTH_API_KEY_INVALID").response()
        return None

    @app.errorhandler(SimError)
    def _sim_error(exc: SimError) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return SimError(status, f"{exc.name}: {request.method} {request.path}").response()
