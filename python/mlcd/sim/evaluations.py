"""The stand-in's model evaluation stores: evaluations of saved-model versions, with their metrics.

Paths and the full info's shape follow dataikuapi (*confirmed*: ``dss/evaluationstore.py``
``_fetch_evaluations`` GET ``/projects/{key}/evaluationstores/{id}/evaluations/``,
``DSSEvaluation._fetch_evaluation`` GET ``.../evaluations/{eid}``, ``DSSEvaluationFullInfo``
reading ``metrics``, ``evaluation.ref.fullId``, ``evaluation.modelRef.fullId``, ``evaluation.created``).
*Inferred*: the evaluation's own full id format (``ME-<KEY>-<STORE>-<ID>``).
*Inferred*: the list items carrying ``modelRef`` and ``created`` too, and the metric names in
``metrics`` being the snippet's (``auc``...). State: ``state/evaluationstores/<KEY>/<ID>.json``
(``{"evaluations": [{id, modelFullId, created, metrics}]}``), set by the knob
``PUT /__sim__/evaluationstores/<KEY>/<ID>`` or added by the ``train_model`` step when its
``next-training`` knob has ``evaluation: {store, metrics}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from mlcd.sim.errors import bad_request, not_found
from mlcd.sim.store import Store, check_id, now_ms, read_json, write_json


def _path(store: Store, key: str, mes: str) -> Path:
    return (
        store.state_dir
        / "evaluationstores"
        / check_id(key, "project key")
        / f"{check_id(mes, 'store id')}.json"
    )


def load(store: Store, key: str, mes: str) -> dict[str, Any]:
    """The store's state; 404 when it does not exist."""
    path = _path(store, key, mes)
    data = read_json(path, None) if path.is_file() else None
    if not isinstance(data, dict):
        raise not_found(f"Evaluation store '{mes}' in project '{key}'", code="ERR_EVALUATION_STORE_NOT_FOUND")
    return data


def add_evaluation(store: Store, key: str, mes: str, full_id: str, metrics: dict[str, Any]) -> str:
    """Append an evaluation of model ``full_id`` (creating the store); return its id."""
    with store.lock:
        path = _path(store, key, mes)
        data = read_json(path, None) if path.is_file() else None
        data = data if isinstance(data, dict) else {"evaluations": []}
        eid = f"ev{len(data['evaluations']) + 1}-{now_ms()}"
        data["evaluations"].append(
            {"id": eid, "modelFullId": full_id, "created": now_ms(), "metrics": metrics}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data)
        return eid


def _ref(key: str, mes: str, ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "ref": {
            "projectKey": key,
            "evaluationStoreId": mes,
            "evaluationId": ev["id"],
            "fullId": f"ME-{key}-{mes}-{ev['id']}",
        },
        "modelRef": {"fullId": ev["modelFullId"]},
        "created": ev["created"],
    }


def _store() -> Store:
    store: Store = current_app.config["SIM_STORE"]
    return store


def list_evaluations(key: str, mes: str) -> Any:
    """GET /projects/{key}/evaluationstores/{id}/evaluations/."""
    current_app.config["SIM_BACKEND"].require_project(key)
    return jsonify([_ref(key, mes, ev) for ev in load(_store(), key, mes)["evaluations"]])


def get_evaluation(key: str, mes: str, eid: str) -> Any:
    """GET /projects/{key}/evaluationstores/{id}/evaluations/{eid}: the full info."""
    current_app.config["SIM_BACKEND"].require_project(key)
    for ev in load(_store(), key, mes)["evaluations"]:
        if ev["id"] == eid:
            evaluation = {**_ref(key, mes, ev), "predictionType": "BINARY_CLASSIFICATION", "hasModel": True,
                          "userMeta": {"name": eid, "labels": []}}  # fmt: skip
            return jsonify({"evaluation": evaluation, "metrics": ev["metrics"]})
    raise not_found(f"Evaluation '{eid}' of store '{mes}'", code="ERR_EVALUATION_NOT_FOUND")


def put_store(key: str, mes: str) -> Any:
    """PUT /__sim__/evaluationstores/{key}/{id}: ``{"evaluations": [{modelFullId, metrics}]}``."""
    body = request.get_json(silent=True)
    items = body.get("evaluations") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "modelFullId" in i for i in items):
        raise bad_request("evaluations must be a list of {modelFullId, metrics}", code="ERR_SIM_INVALID")
    store = _store()
    with store.lock:
        _path(store, key, mes).unlink(missing_ok=True)
        for item in items:
            add_evaluation(store, key, mes, str(item["modelFullId"]), dict(item.get("metrics") or {}))
    return jsonify(load(store, key, mes))


def register(api: Blueprint, control: Blueprint) -> None:
    """Add the evaluation-store routes and their knob."""
    base = "/projects/<key>/evaluationstores/<mes>/evaluations"
    api.add_url_rule(f"{base}/", view_func=list_evaluations, methods=["GET"])
    api.add_url_rule(f"{base}/<eid>", view_func=get_evaluation, methods=["GET"])
    control.add_url_rule("/evaluationstores/<key>/<mes>", view_func=put_store, methods=["PUT"])
