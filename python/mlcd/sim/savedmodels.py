"""The stand-in's saved models: versions with metrics, one active version, and a training step.

State lives in ``state/savedmodels/<KEY>/<ID>.json``; a saved model is seeded from
the project's content (``savedmodels/<ID>.json`` of the active bundle on an
automation node, of the project folder on a design node) the first time it is read.

Evidence (docs/stand-in.md, "Saved models"): paths, the version list's ``id`` and
``active``, the snippet holding the performance metrics at its top level, and
``setActive`` answering with no body are *confirmed* by dataikuapi
(``dss/savedmodel.py``: ``list_versions``, ``get_version_details``,
``set_active_version``; ``dss/ml.py``: ``get_performance_metrics`` = the snippet
minus bookkeeping keys). *Inferred*: the version ids (epoch milliseconds, like DSS's
training session ids), the details' content, and whether a training step activates
the version it creates (``nextTraining.activate``, default true: both readings are
switches that tests use). Knobs (``PUT /__sim__/savedmodels/<KEY>/<ID>/next-training``):
``metrics`` of the next version, ``activate``, ``fail`` (``before`` or ``after``
creating the version); on the saved model, ``setActiveIgnored`` makes ``setActive``
answer 204 and change nothing (a node whose read-back disagrees).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from mlcd.sim.errors import SimError, bad_request, not_found
from mlcd.sim.store import Store, check_id, now_ms, read_json, write_json

PREDICTION_TYPE = "BINARY_CLASSIFICATION"


# -- state -------------------------------------------------------------------------------------------


def _state_path(store: Store, key: str, sm: str) -> Path:
    return (
        store.state_dir
        / "savedmodels"
        / check_id(key, "project key")
        / f"{check_id(sm, 'saved model id')}.json"
    )


def _content_dir(store: Store, key: str) -> Path | None:
    try:
        return store.project_content_dir(key)
    except SimError:
        return None


def _seed(store: Store, key: str, sm: str) -> dict[str, Any] | None:
    content = _content_dir(store, key)
    path = content / "savedmodels" / f"{sm}.json" if content else None
    data = read_json(path, None) if path is not None and path.is_file() else None
    if not isinstance(data, dict):
        return None
    return normalised(key, sm, data)


def normalised(key: str, sm: str, data: dict[str, Any]) -> dict[str, Any]:
    """A saved model's state with every key present (``versions``: id, snippet, trainDate)."""
    versions = []
    for index, item in enumerate(data.get("versions") or []):
        if isinstance(item, dict):
            vid = str(item.get("id") or f"v{index + 1}")
            snippet = {
                **_snippet_base(key, sm, vid),
                **dict(item.get("snippet") or item.get("metrics") or {}),
            }
            versions.append({"id": vid, "snippet": snippet, "trainDate": item.get("trainDate", now_ms())})
    active = data.get("activeVersion")
    if active is None and versions and "activeVersion" not in data:
        active = versions[-1]["id"]
    return {
        "id": sm,
        "name": str(data.get("name") or sm),
        "versions": versions,
        "activeVersion": active,
        "setActiveIgnored": bool(data.get("setActiveIgnored", False)),
        "nextTraining": dict(data.get("nextTraining") or {}),
    }


def _snippet_base(key: str, sm: str, vid: str) -> dict[str, Any]:
    return {
        "predictionType": PREDICTION_TYPE,
        "algorithm": "LOGISTIC_REGRESSION",
        "fullModelId": f"S-{key}-{sm}-{vid}",
    }


def saved_model_ids(store: Store, key: str) -> list[str]:
    """Ids of the project's saved models: those with state, and those its content declares."""
    ids = {p.stem for p in (store.state_dir / "savedmodels" / check_id(key, "project key")).glob("*.json")}
    content = _content_dir(store, key)
    if content is not None:
        ids |= {p.stem for p in (content / "savedmodels").glob("*.json")}
    return sorted(ids)


def load(store: Store, key: str, sm: str) -> dict[str, Any]:
    """The state of saved model ``sm`` (seeded from the project's content); 404 when there is none."""
    with store.lock:
        path = _state_path(store, key, sm)
        data = read_json(path, None) if path.is_file() else _seed(store, key, sm)
        if not isinstance(data, dict):
            raise not_found(f"Saved model '{sm}' in project '{key}'", code="ERR_SAVED_MODEL_NOT_FOUND")
        return data


def save(store: Store, key: str, sm: str, data: dict[str, Any]) -> None:
    """Write the state of saved model ``sm``."""
    with store.lock:
        path = _state_path(store, key, sm)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data)


def _version(data: dict[str, Any], vid: str) -> dict[str, Any]:
    for item in data["versions"]:
        if item["id"] == vid:
            return dict(item)
    raise not_found(
        f"Version '{vid}' of saved model '{data['id']}'", code="ERR_SAVED_MODEL_VERSION_NOT_FOUND"
    )


# -- the training step ---------------------------------------------------------------------------------


def train(store: Store, key: str, step: dict[str, Any], step_id: str) -> tuple[str, str]:
    """Scenario step ``{"type": "train_model", "savedModel": ID}``: a new version (see the module doc)."""
    sm = str(step.get("savedModel") or "")
    if not sm:
        return "FAILED", f"Step '{step_id}': train_model needs 'savedModel'"
    with store.lock:
        try:
            data = load(store, key, sm)
        except SimError as exc:
            return "FAILED", f"Step '{step_id}': {exc.message}"
        knob = dict(data.get("nextTraining") or {})
        if knob.get("fail") == "before":
            return "FAILED", f"Training of saved model '{sm}' failed: {knob.get('message') or 'no data'}"
        metrics = _trained_metrics(data, knob)
        vid = _new_version_id(data)
        snippet = {**_snippet_base(key, sm, vid), "trainDate": now_ms(), **metrics}
        data["versions"].append({"id": vid, "snippet": snippet, "trainDate": snippet["trainDate"]})
        if knob.get("activate", True):
            data["activeVersion"] = vid
        save(store, key, sm, data)
        _evaluate(store, key, knob.get("evaluation"), str(snippet["fullModelId"]), metrics)
    if knob.get("fail") == "after":
        return "FAILED", f"Training of saved model '{sm}' failed after writing version {vid}"
    return "SUCCESS", f"Trained saved model '{sm}': version {vid}"


def _trained_metrics(data: dict[str, Any], knob: dict[str, Any]) -> dict[str, Any]:
    """The knob's ``metrics``; without them, the same scores as the active version."""
    metrics = knob.get("metrics")
    if isinstance(metrics, dict):
        return metrics
    current = next((v for v in data["versions"] if v["id"] == data.get("activeVersion")), None)
    return {k: v for k, v in (current or {}).get("snippet", {}).items() if k not in _snippet_base("", "", "")}


def _new_version_id(data: dict[str, Any]) -> str:
    """A version id from the clock, one past any existing id it would collide with."""
    vid = str(now_ms())
    while any(v["id"] == vid for v in data["versions"]):
        vid = str(int(vid) + 1)
    return vid


def _evaluate(store: Store, key: str, evaluation: Any, full_id: str, metrics: dict[str, Any]) -> None:
    """The knob's ``evaluation: {store, metrics}``: evaluate the new version into that store."""
    if not isinstance(evaluation, dict) or not evaluation.get("store"):
        return
    from mlcd.sim.evaluations import add_evaluation

    scores = evaluation.get("metrics")
    add_evaluation(
        store, key, str(evaluation["store"]), full_id, dict(scores if isinstance(scores, dict) else metrics)
    )


def other_step(store: Store, key: str, step: dict[str, Any], info: dict[str, str]) -> tuple[str, str]:
    """Step types beyond ``python`` and ``wait``: ``train_model``; anything else fails as unsupported."""
    if info["type"] == "train_model":
        return train(store, key, step, info["id"])
    return (
        "FAILED",
        f"Step '{info['id']}': unsupported step type '{info['type']}' (use python, wait or train_model)",
    )


# -- routes ------------------------------------------------------------------------------------------


def _store() -> Store:
    store: Store = current_app.config["SIM_STORE"]
    return store


def _loaded(key: str, sm: str) -> dict[str, Any]:
    current_app.config["SIM_BACKEND"].require_project(key)
    return load(_store(), key, sm)


def list_saved_models(key: str) -> Any:
    """GET /projects/{key}/savedmodels/: id, name, type of each."""
    current_app.config["SIM_BACKEND"].require_project(key)
    store = _store()
    items = []
    for sm in saved_model_ids(store, key):
        data = load(store, key, sm)
        items.append({"id": sm, "projectKey": key, "name": data["name"], "type": "PREDICTION"})
    return jsonify(items)


def get_saved_model(key: str, sm: str) -> Any:
    """GET /projects/{key}/savedmodels/{id}: its settings."""
    data = _loaded(key, sm)
    task = {"taskType": "PREDICTION", "predictionType": PREDICTION_TYPE}
    return jsonify(
        {
            "id": sm,
            "projectKey": key,
            "name": data["name"],
            "miniTask": task,
            "activeVersion": data.get("activeVersion"),
        }
    )


def list_versions(key: str, sm: str) -> Any:
    """GET .../versions: ``id``, ``active``, ``trainDate``, ``snippet`` of each version."""
    data = _loaded(key, sm)
    return jsonify(
        [
            {"id": v["id"], "active": v["id"] == data.get("activeVersion"), "trainDate": v["trainDate"],
             "snippet": v["snippet"]}
            for v in data["versions"]
        ]
    )  # fmt: skip


def version_details(key: str, sm: str, vid: str) -> Any:
    """GET .../versions/{v}/details (content inferred: identity and training info)."""
    version = _version(_loaded(key, sm), vid)
    return jsonify({"fullModelId": version["snippet"]["fullModelId"], "smOrigin": {"id": vid},
                    "trainInfo": {"state": "DONE", "endTime": version["trainDate"]},
                    "userMeta": {"name": vid, "labels": []}})  # fmt: skip


def version_snippet(key: str, sm: str, vid: str) -> Any:
    """GET .../versions/{v}/snippet: the performance metrics at the top level."""
    return jsonify(_version(_loaded(key, sm), vid)["snippet"])


def set_active(key: str, sm: str, vid: str) -> Any:
    """POST .../versions/{v}/actions/setActive: 204, no body."""
    store = _store()
    with store.lock:
        data = _loaded(key, sm)
        _version(data, vid)
        if not data.get("setActiveIgnored"):
            data["activeVersion"] = vid
            save(store, key, sm, data)
    return Response(status=204)


def control_put(key: str, sm: str) -> Any:
    """PUT /__sim__/savedmodels/{key}/{id}: replace the saved model's state (tests seed it)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("Saved model state must be a JSON object", code="ERR_SIM_INVALID")
    data = normalised(key, sm, body)
    save(_store(), key, sm, data)
    return jsonify(data)


def control_get(key: str, sm: str) -> Any:
    """GET /__sim__/savedmodels/{key}/{id}: the saved model's state."""
    return jsonify(load(_store(), key, sm))


def control_next_training(key: str, sm: str) -> Any:
    """PUT /__sim__/savedmodels/{key}/{id}/next-training: ``metrics``, ``activate``, ``fail``, ``message``."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("fail") not in (None, "before", "after"):
        raise bad_request("next-training must be an object; fail: before | after", code="ERR_SIM_INVALID")
    store = _store()
    with store.lock:
        data = load(store, key, sm)
        data["nextTraining"] = body
        save(store, key, sm, data)
    return jsonify(data)


def register(api: Blueprint, control: Blueprint) -> None:
    """Add the saved-model routes to the API blueprint and the knobs to the test-control blueprint."""
    base = "/projects/<key>/savedmodels"
    api.add_url_rule(f"{base}/", view_func=list_saved_models, methods=["GET"])
    api.add_url_rule(f"{base}/<sm>", view_func=get_saved_model, methods=["GET"])
    api.add_url_rule(f"{base}/<sm>/versions", view_func=list_versions, methods=["GET"])
    api.add_url_rule(f"{base}/<sm>/versions/<vid>/details", view_func=version_details, methods=["GET"])
    api.add_url_rule(f"{base}/<sm>/versions/<vid>/snippet", view_func=version_snippet, methods=["GET"])
    api.add_url_rule(f"{base}/<sm>/versions/<vid>/actions/setActive", view_func=set_active, methods=["POST"])
    control.add_url_rule("/savedmodels/<key>/<sm>", view_func=control_put, methods=["PUT"])
    control.add_url_rule("/savedmodels/<key>/<sm>", view_func=control_get, methods=["GET"])
    control.add_url_rule(
        "/savedmodels/<key>/<sm>/next-training", view_func=control_next_training, methods=["PUT"]
    )
