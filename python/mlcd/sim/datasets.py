"""The stand-in's dataset metrics: the last computed values a project's checks read (a drift score).

``GET /projects/<KEY>/datasets/<NAME>/metrics/last/<PARTITION>`` answers the shape
dataikuapi reads (*confirmed*: ``dss/dataset.py`` ``get_last_metric_values``,
``dss/metrics.py`` ``ComputedMetrics``: ``{"metrics": [{"metric": {"id"}, "lastValues":
[{"partition", "value"}]}]}``, values as strings). *Inferred*: the other fields of a
metric (``metricType``, ``computed``). Values come from the knob
``PUT /__sim__/datasets/<KEY>/<NAME>/metrics`` (``{metric id: number}``), kept in
``state/datasetmetrics/<KEY>/<NAME>.json``; a dataset without values is unknown (404).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from mlcd.sim.errors import bad_request, not_found
from mlcd.sim.store import Store, check_id, now_ms, read_json, write_json


def _path(store: Store, key: str, name: str) -> Path:
    return (
        store.state_dir
        / "datasetmetrics"
        / check_id(key, "project key")
        / f"{check_id(name, 'dataset')}.json"
    )


def _store() -> Store:
    store: Store = current_app.config["SIM_STORE"]
    return store


def last_values(key: str, name: str, partition: str) -> Any:
    """GET /projects/{key}/datasets/{name}/metrics/last/{partition}."""
    current_app.config["SIM_BACKEND"].require_project(key)
    path = _path(_store(), key, name)
    values = read_json(path, None) if path.is_file() else None
    if not isinstance(values, dict):
        raise not_found(f"Dataset '{name}' in project '{key}'", code="ERR_DATASET_NOT_FOUND")
    stamp = int(path.stat().st_mtime * 1000)
    metrics = [
        {"metric": {"id": mid, "metricType": "CUSTOM", "type": mid.split(":")[0]},
         "lastValues": [{"partition": partition, "value": str(value), "time": stamp}]}
        for mid, value in values.items()
    ]  # fmt: skip
    return jsonify({"metrics": metrics, "computed": now_ms()})


def put_values(key: str, name: str) -> Any:
    """PUT /__sim__/datasets/{key}/{name}/metrics: ``{metric id: number}`` (tests push the drift up)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(isinstance(v, int | float) for v in body.values()):
        raise bad_request("Dataset metrics must be an object of numbers", code="ERR_SIM_INVALID")
    path = _path(_store(), key, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, body)
    return jsonify(body)


def register(api: Blueprint, control: Blueprint) -> None:
    """Add the dataset-metrics route to the API blueprint and its knob to the test-control blueprint."""
    api.add_url_rule(
        "/projects/<key>/datasets/<name>/metrics/last/<partition>", view_func=last_values, methods=["GET"]
    )
    control.add_url_rule("/datasets/<key>/<name>/metrics", view_func=put_values, methods=["PUT"])
